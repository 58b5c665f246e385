#include "agent/fd_holder.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace corral::agent {
namespace {

constexpr size_t kMaxMessage = 4096;

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    return Error{"socket path too long: " + path, "use a shorter --state-dir"};
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// One SOCK_SEQPACKET message with at most one fd attached.
bool send_message(int sock, const std::string& msg, int fd) {
  iovec iov{const_cast<char*>(msg.data()), msg.size()};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    h.msg_control = control;
    h.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return ::sendmsg(sock, &h, MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size());
}

// Receives one message; *fd gets an attached descriptor (or stays invalid). false on EOF.
bool receive_message(int sock, std::string* msg, Fd* fd) {
  char buf[kMaxMessage];
  iovec iov{buf, sizeof buf};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
  if (n <= 0) return false;
  msg->assign(buf, static_cast<size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c), sizeof received);
      fd->reset(received);
    }
  }
  return true;
}

Result<Fd> connect_to(const std::string& path) {
  auto a = address(path);
  if (!a) return a.error();
  Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket");
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&*a), sizeof *a) != 0) {
    return errno_error("connect " + path);
  }
  // The holder serves one agent at a time: a second agent on the same state dir must not
  // wait for it forever.
  const timeval bound{2, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
  return s;
}

struct Held {
  std::string meta;
  Fd fd;
};

// Serves one connected agent until it disconnects (true) or says QUIT (false).
bool serve_agent(int client, std::map<std::string, Held>& held) {
  std::string msg;
  Fd fd;
  while (receive_message(client, &msg, &fd)) {
    std::istringstream in(msg);
    std::string verb, id, meta;
    in >> verb >> id;
    std::getline(in >> std::ws, meta);
    if (verb == "PUT" && fd) {
      held[id] = Held{meta, std::move(fd)};
    } else if (verb == "DEL") {
      held.erase(id);
    } else if (verb == "TAKE") {
      for (const auto& [key, h] : held)
        send_message(client, "FD " + key + " " + h.meta, h.fd.get());
      send_message(client, "END", -1);
    } else if (verb == "QUIT") {
      return false;
    }
    fd.reset();
  }
  return true;
}

} // namespace

int run_fd_holder(const std::string& socket_path, std::chrono::seconds hold) {
  // SIGTERM/SIGINT keep their default action: the process ends and the kernel closes the
  // groups, which allows what they hold.
  ::signal(SIGPIPE, SIG_IGN);
  auto a = address(socket_path);
  if (!a) return std::cerr << "corrald fd-holder: " << a.error().to_string() << "\n", 1;
  Fd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  ::unlink(socket_path.c_str());
  const mode_t old = ::umask(0077);
  const bool bound = ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&*a), sizeof *a) == 0;
  ::umask(old);
  if (!bound || ::listen(listener.get(), 4) != 0) {
    std::cerr << "corrald fd-holder: cannot listen on " << socket_path << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  // Its pid, for whoever supervises (tests stop exactly the processes they started).
  const std::string pid_file = socket_path + ".pid";
  if (FILE* f = std::fopen(pid_file.c_str(), "we")) {
    std::fprintf(f, "%d\n", static_cast<int>(::getpid()));
    std::fclose(f);
  }
  std::map<std::string, Held> held;
  while (true) {
    // Wait for an agent; give up (allowing everything held) after `hold` without one.
    pollfd p{listener.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(hold.count() * 1000));
    if (n == 0) {
      if (!held.empty()) {
        std::cerr << "corrald fd-holder: no agent for " << hold.count() << " s; releasing "
                  << held.size() << " fanotify groups\n";
      }
      break;
    }
    if (n < 0) continue;
    Fd client(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client && !serve_agent(client.get(), held)) break;
  }
  ::unlink(socket_path.c_str());
  ::unlink(pid_file.c_str());
  return 0;
}

Result<std::unique_ptr<FdHolderClient>>
FdHolderClient::connect_or_spawn(const std::string& socket_path, std::chrono::seconds hold) {
  if (auto s = connect_to(socket_path)) {
    return std::unique_ptr<FdHolderClient>(new FdHolderClient(std::move(*s)));
  }
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork the fd holder");
  if (pid == 0) {
    ::setsid(); // out of the agent's process group: a signal to the agent spares it
    const std::string seconds = std::to_string(hold.count());
    ::execl("/proc/self/exe", "corrald", "fd-holder", "--socket", socket_path.c_str(),
            "--hold-seconds", seconds.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) { // up to 2 s for the holder to listen
    if (auto s = connect_to(socket_path)) {
      return std::unique_ptr<FdHolderClient>(new FdHolderClient(std::move(*s)));
    }
    ::usleep(10000);
  }
  return Error{"the fd holder did not start on " + socket_path, "see the agent's log"};
}

bool FdHolderClient::send(const std::string& msg, int fd) {
  std::lock_guard lock(mu_);
  return send_message(sock_.get(), msg, fd);
}

Result<std::vector<HeldFd>> FdHolderClient::take() {
  std::lock_guard lock(mu_);
  if (!send_message(sock_.get(), "TAKE", -1)) return errno_error("ask the fd holder");
  std::vector<HeldFd> out;
  std::string msg;
  Fd fd;
  while (true) {
    if (!receive_message(sock_.get(), &msg, &fd)) {
      return Error{"the fd holder does not answer (another agent on this state dir?)",
                   "run one corrald per --state-dir"};
    }
    if (msg == "END") break;
    std::istringstream in(msg);
    std::string verb;
    HeldFd h;
    in >> verb >> h.id;
    std::getline(in >> std::ws, h.meta);
    h.fd = std::move(fd);
    if (verb == "FD" && h.fd) out.push_back(std::move(h));
    fd.reset();
  }
  return out;
}

void FdHolderClient::put(const std::string& id, const std::string& meta, int fd) {
  send("PUT " + id + " " + meta, fd);
}

void FdHolderClient::drop(const std::string& id) {
  send("DEL " + id);
}

void FdHolderClient::quit() {
  send("QUIT");
}

} // namespace corral::agent
