// net_probe: opens one socket of a given kind inside a container's own network namespace and
// uses it over loopback (issue 9's network tests and the `net` benchmark).
//
//   net_probe KIND             KIND: tcp tcp6 udp udp6 raw-icmp raw-udp raw6-icmpv6 ping
//                              prints "ok" (exit 0) or "KIND: socket: <errno text>" (exit 1)
//   net_probe loop KIND SECS   tries KIND for SECS seconds; prints "passed N of M" and exits
//                              0 only when none passed
//   net_probe bench-tcp N      N connects (a new socket each) to a listener of its own
//   net_probe bench-udp N      N datagrams, a new socket each
//   net_probe bench-udp1 N     N datagrams on one socket; all print the seconds taken
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

struct Kind {
  const char* name;
  int family, type, protocol;
};
constexpr Kind kKinds[] = {
    {"tcp", AF_INET, SOCK_STREAM, 0},
    {"tcp6", AF_INET6, SOCK_STREAM, 0},
    {"udp", AF_INET, SOCK_DGRAM, 0},
    {"udp6", AF_INET6, SOCK_DGRAM, 0},
    {"raw-icmp", AF_INET, SOCK_RAW, IPPROTO_ICMP},
    {"raw-udp", AF_INET, SOCK_RAW, IPPROTO_UDP},
    {"raw6-icmpv6", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6},
    {"ping", AF_INET, SOCK_DGRAM, IPPROTO_ICMP},
};

const Kind* find(const std::string& name) {
  for (const auto& k : kKinds)
    if (name == k.name) return &k;
  return nullptr;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int listener(uint16_t* port) {
  const int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) return -1;
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 512) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return -1;
  *port = ntohs(a.sin_port);
  return l;
}

// Creates and uses one socket; returns 0 or the failing errno (what names the step).
int try_kind(const Kind& k, const char** what) {
  *what = "socket";
  const int s = socket(k.family, k.type, k.protocol);
  if (s < 0) return errno;
  int err = 0;
  if (k.type == SOCK_STREAM && k.family == AF_INET) {
    uint16_t port = 0;
    const int l = listener(&port);
    sockaddr_in a = loopback(port);
    *what = "connect";
    if (l < 0 || connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) err = errno;
    if (l >= 0) close(l);
  } else if (k.family == AF_INET) {
    sockaddr_in a = loopback(9);
    icmphdr echo{};
    echo.type = ICMP_ECHO;
    *what = "sendto";
    if (sendto(s, &echo, sizeof echo, 0, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
      err = errno;
  }
  close(s);
  return err;
}

double bench_one_socket(long n) {
  const sockaddr_in a = loopback(9);
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return -1;
  const char byte = 0;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    if (sendto(s, &byte, 1, 0, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) return -1;
  }
  close(s);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double bench(bool tcp, long n) {
  uint16_t port = 9;
  const int l = tcp ? listener(&port) : -1;
  if (tcp && l < 0) return -1;
  const sockaddr_in a = loopback(port);
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    const int s = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (s < 0) return -1;
    if (tcp) {
      if (connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return -1;
      const int c = accept(l, nullptr, nullptr);
      if (c >= 0) close(c);
    } else {
      const char byte = 0;
      if (sendto(s, &byte, 1, 0, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) return -1;
    }
    close(s);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if ((cmd == "bench-tcp" || cmd == "bench-udp" || cmd == "bench-udp1") && argc == 3) {
    const long n = std::strtol(argv[2], nullptr, 10);
    const double secs = cmd == "bench-udp1" ? bench_one_socket(n) : bench(cmd == "bench-tcp", n);
    if (secs < 0) return std::printf("%s: %s\n", cmd.c_str(), std::strerror(errno)), 1;
    return std::printf("%.6f\n", secs), 0;
  }
  if (cmd == "loop" && argc == 4 && find(argv[2]) != nullptr) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[3]));
    long passed = 0, tries = 0;
    while (std::chrono::steady_clock::now() < end) {
      const int s = socket(find(argv[2])->family, find(argv[2])->type, find(argv[2])->protocol);
      ++tries;
      if (s >= 0) ++passed, close(s);
      usleep(1000);
    }
    std::printf("passed %ld of %ld\n", passed, tries);
    return passed == 0 ? 0 : 1;
  }
  const Kind* k = argc == 2 ? find(cmd) : nullptr;
  if (k == nullptr) {
    std::fprintf(stderr, "usage: net_probe KIND | loop KIND SECS | bench-tcp N | bench-udp N\n");
    return 2;
  }
  const char* what = nullptr;
  if (const int err = try_kind(*k, &what); err != 0) {
    std::printf("%s: %s: %s\n", k->name, what, std::strerror(err));
    std::fflush(stdout);
    usleep(300 * 1000); // lets the agent read this process (/proc) for its alert
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
