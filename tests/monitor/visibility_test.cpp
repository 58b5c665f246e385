// File and network visibility against the real kernel: a child of this test moves itself into
// a scratch cgroup v2, then opens files (openat, open, openat2, creat; one missing) and makes
// network calls (TCP connect and accept on loopback, a UDP bind, an IPv6 UDP connect, a unix
// connect to nobody). Made visible, its cgroup's calls are reported with their paths,
// flags, addresses, sockets and results; not made visible, or no longer, nothing is.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "scratch_cgroup.h"
#include "seen.h"

namespace corral::monitor {
namespace {

using corral::testing::ScratchCgroup;

// What a child does, prepared before fork: the child of a threaded parent (the monitor has
// its thread) makes only system calls.
struct Plan {
  const char* procs = nullptr; // cgroup.procs of the cgroup it moves into
  const char* existing = nullptr;
  const char* missing = nullptr;
  const char* created = nullptr;     // creat() makes it
  const char* nobody_sock = nullptr; // a unix socket path nobody listens on
  int listener = -1;                 // TCP, 127.0.0.1:port, inherited
  uint16_t port = 0;
};

// What the child's calls returned (an fd or 0, or -errno), sent back through a pipe.
struct Report {
  int openat_fd, missing, open_fd, openat2_fd, creat_fd;
  int connect1, connect2, local_port1, local_port2, accept4_fd, accept_fd;
  int bind, connect6, connect_unix;
};

int result_of(long r) {
  return r < 0 ? -errno : static_cast<int>(r);
}

sockaddr_in loopback4(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 ? ntohs(a.sin_port) : -1;
}

// The child's calls, in this order (the test checks the order too).
Report act(const Plan& p) {
  Report r{};
  r.openat_fd = result_of(::openat(AT_FDCWD, p.existing, O_RDONLY | O_CLOEXEC));
  r.missing = result_of(::openat(AT_FDCWD, p.missing, O_RDONLY | O_CLOEXEC));
  r.open_fd = result_of(::syscall(SYS_open, p.existing, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_DIRECTORY;
  r.openat2_fd = result_of(::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how));
  r.creat_fd = result_of(::syscall(SYS_creat, p.created, 0600));

  const sockaddr_in to = loopback4(p.port);
  const int t1 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int t2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  r.connect1 = result_of(::connect(t1, reinterpret_cast<const sockaddr*>(&to), sizeof to));
  r.connect2 = result_of(::connect(t2, reinterpret_cast<const sockaddr*>(&to), sizeof to));
  r.local_port1 = local_port(t1);
  r.local_port2 = local_port(t2);
  r.accept4_fd = result_of(::accept4(p.listener, nullptr, nullptr, SOCK_CLOEXEC));
  sockaddr_in peer{};
  socklen_t peer_len = sizeof peer;
  r.accept_fd = result_of(::accept(p.listener, reinterpret_cast<sockaddr*>(&peer), &peer_len));

  const int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const sockaddr_in any_port = loopback4(0);
  r.bind = result_of(::bind(u, reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port));
  const int u6 = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 to6{};
  to6.sin6_family = AF_INET6;
  to6.sin6_port = htons(p.port);
  to6.sin6_addr = in6addr_loopback;
  r.connect6 = u6 < 0
                   ? -EAFNOSUPPORT
                   : result_of(::connect(u6, reinterpret_cast<const sockaddr*>(&to6), sizeof to6));
  const int us = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  for (size_t i = 0; p.nobody_sock[i] != '\0' && i + 1 < sizeof un.sun_path; ++i)
    un.sun_path[i] = p.nobody_sock[i];
  r.connect_unix = result_of(::connect(us, reinterpret_cast<const sockaddr*>(&un), sizeof un));
  return r;
}

struct Ran {
  pid_t pid = -1;
  Report report{};
};

// Forks a child that moves itself into the plan's cgroup, says so, waits for the go, acts,
// reports and exits 0. Fails the test when any step does.
void run_child(const Plan& p, Ran* ran) {
  int ready[2], go[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const char in = corral::testing::enter_cgroup(p.procs) ? 'y' : 'n';
    char b = 0;
    if (::write(ready[1], &in, 1) != 1 || ::read(go[0], &b, 1) != 1) ::_exit(2);
    const Report r = act(p);
    ::_exit(::write(ready[1], &r, sizeof r) == sizeof r ? 0 : 3);
  }
  ::close(ready[1]);
  ::close(go[0]);
  ran->pid = pid;
  char in = 0;
  const bool entered = ::read(ready[0], &in, 1) == 1 && in == 'y';
  const bool went = entered && ::write(go[1], "g", 1) == 1;
  const bool reported = went && ::read(ready[0], &ran->report, sizeof ran->report) ==
                                    static_cast<ssize_t>(sizeof ran->report);
  ::close(go[1]);
  ::close(ready[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(entered) << "the child could not move itself into " << p.procs;
  ASSERT_TRUE(reported);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

class Visibility : public ::testing::Test {
protected:
  void SetUp() override {
    auto m = Monitor::start(seen_.options());
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    monitor_ = std::move(*m);
    for (auto* cg : {&visible_, &other_}) {
      auto c = ScratchCgroup::make("corral-monitor-test");
      ASSERT_TRUE(c.ok()) << c.error().to_string();
      *cg = std::move(*c);
    }
    char dir[] = "/tmp/corral-monitor-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    existing_ = dir_ + "/existing";
    std::ofstream(existing_) << "x";
    missing_ = dir_ + "/missing";
    created_ = dir_ + "/created";
    nobody_ = dir_ + "/nobody.sock";
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in any_port = loopback4(0);
    ASSERT_EQ(::bind(listener_, reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port), 0);
    ASSERT_EQ(::listen(listener_, 8), 0);
    port_ = static_cast<uint16_t>(local_port(listener_));
  }

  void TearDown() override {
    if (monitor_) monitor_->clear_visibility();
    monitor_.reset();
    if (listener_ >= 0) ::close(listener_);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    visible_.reset(); // the children are reaped: the cgroups can go
    other_.reset();
  }

  Plan plan(const ScratchCgroup& cg) const {
    return Plan{cg.procs().c_str(),
                existing_.c_str(),
                missing_.c_str(),
                created_.c_str(),
                nobody_.c_str(),
                listener_,
                port_};
  }

  // Runs the child in `cg` and waits for its exit event: the ring buffer is ordered, so every
  // event of its calls has been delivered by then.
  Ran run_in(const ScratchCgroup& cg) {
    Ran ran;
    run_child(plan(cg), &ran);
    EXPECT_TRUE(seen_.wait(Kind::Exit, ran.pid).has_value()) << "no exit event for " << ran.pid;
    return ran;
  }

  Seen seen_;
  std::unique_ptr<Monitor> monitor_;
  std::unique_ptr<ScratchCgroup> visible_, other_;
  std::string dir_, existing_, missing_, created_, nobody_;
  int listener_ = -1;
  uint16_t port_ = 0;
};

TEST_F(Visibility, ReportsEveryFileOpenOfAVisibleCgroupWithPathFlagsAndResult) {
  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), kVisibleFile | kVisibleNetwork).ok());
  const Ran ran = run_in(*visible_);
  ASSERT_GE(ran.report.openat_fd, 0);
  ASSERT_EQ(ran.report.missing, -ENOENT);

  const auto files = seen_.of(Kind::File, ran.pid);
  ASSERT_EQ(files.size(), 5u) << "openat, openat (missing), open, openat2, creat";
  struct Want {
    std::string path;
    int flags, result;
  };
  const Want want[] = {
      {existing_, O_RDONLY | O_CLOEXEC, ran.report.openat_fd},
      {missing_, O_RDONLY | O_CLOEXEC, -ENOENT},
      {existing_, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, ran.report.open_fd},
      {"/", O_RDONLY | O_CLOEXEC | O_DIRECTORY, ran.report.openat2_fd},
      {created_, O_CREAT | O_WRONLY | O_TRUNC, ran.report.creat_fd},
  };
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  for (size_t i = 0; i < files.size(); ++i) {
    SCOPED_TRACE("file event " + std::to_string(i) + ": " + want[i].path);
    ASSERT_TRUE(files[i].file.has_value());
    EXPECT_FALSE(files[i].net.has_value());
    EXPECT_EQ(files[i].file->path, want[i].path);
    EXPECT_EQ(files[i].file->flags, want[i].flags);
    EXPECT_EQ(files[i].file->result, want[i].result);
    EXPECT_EQ(files[i].tid, ran.pid);
    EXPECT_EQ(files[i].process.tgid, ran.pid);
    EXPECT_EQ(files[i].process.ppid, ::getpid());
    EXPECT_EQ(files[i].process.cgroup, visible_->id());
    EXPECT_EQ(files[i].process.uid, ::getuid());
    EXPECT_EQ(files[i].process.exe, exe); // a fork of this test: its image
  }
  const auto stats = monitor_->stats();
  EXPECT_GE(stats.events[static_cast<int>(Kind::File)], 5u);
  EXPECT_EQ(stats.dropped[static_cast<int>(Kind::File)], 0u);
}

TEST_F(Visibility, ReportsConnectBindAndAcceptOfAVisibleCgroupWithAddressSocketAndResult) {
  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), kVisibleFile | kVisibleNetwork).ok());
  const Ran ran = run_in(*visible_);
  const Report& r = ran.report;
  ASSERT_EQ(r.connect1, 0);
  ASSERT_EQ(r.connect2, 0);
  ASSERT_GE(r.accept4_fd, 0);
  ASSERT_GE(r.accept_fd, 0);
  ASSERT_EQ(r.bind, 0);
  ASSERT_EQ(r.connect_unix, -ENOENT);

  const auto net = seen_.of(Kind::Network, ran.pid);
  const bool ipv6 = r.connect6 != -EAFNOSUPPORT;
  ASSERT_EQ(net.size(), ipv6 ? 7u : 6u);
  using Op = NetAccess::Op;
  struct Want {
    Op op;
    int family, type, protocol;
    std::string address;
    int port, result;
  };
  std::vector<Want> want = {
      {Op::Connect, AF_INET, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1", port_, 0},
      {Op::Connect, AF_INET, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1", port_, 0},
      // The peers, from the accepted sockets (accept4 was passed no address).
      {Op::Accept, AF_INET, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1", r.local_port1, r.accept4_fd},
      {Op::Accept, AF_INET, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1", r.local_port2, r.accept_fd},
      {Op::Bind, AF_INET, SOCK_DGRAM, IPPROTO_UDP, "127.0.0.1", 0, 0},
  };
  if (ipv6)
    want.push_back({Op::Connect, AF_INET6, SOCK_DGRAM, IPPROTO_UDP, "::1", port_, r.connect6});
  want.push_back({Op::Connect, AF_UNIX, SOCK_STREAM, 0, nobody_, 0, -ENOENT});
  for (size_t i = 0; i < net.size(); ++i) {
    SCOPED_TRACE("network event " + std::to_string(i) + ": " + want[i].address);
    ASSERT_TRUE(net[i].net.has_value());
    EXPECT_FALSE(net[i].file.has_value());
    const NetAccess& n = *net[i].net;
    EXPECT_EQ(n.op, want[i].op);
    EXPECT_EQ(n.family, want[i].family);
    EXPECT_EQ(n.type, want[i].type);
    EXPECT_EQ(n.protocol, want[i].protocol);
    EXPECT_EQ(n.address, want[i].address);
    EXPECT_EQ(n.port, want[i].port);
    EXPECT_EQ(n.result, want[i].result);
    EXPECT_EQ(net[i].process.tgid, ran.pid);
    EXPECT_EQ(net[i].process.cgroup, visible_->id());
  }
  EXPECT_EQ(monitor_->stats().dropped[static_cast<int>(Kind::Network)], 0u);
}

TEST_F(Visibility, ReportsNothingOfACgroupThatIsNotVisible) {
  // The hooks are attached (one cgroup is visible): the other one's calls must not pass.
  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), kVisibleFile | kVisibleNetwork).ok());
  const Ran ran = run_in(*other_);
  ASSERT_GE(ran.report.openat_fd, 0);
  ASSERT_EQ(ran.report.connect1, 0);
  EXPECT_TRUE(seen_.of(Kind::File, ran.pid).empty());
  EXPECT_TRUE(seen_.of(Kind::Network, ran.pid).empty());
  // Its process events are reported as for any process.
  EXPECT_FALSE(seen_.of(Kind::Fork, ran.pid).empty());
}

TEST_F(Visibility, ReportsOnlyWhatTheMaskAsksForAndNothingOnceRemovedOrCleared) {
  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), kVisibleFile).ok());
  const Ran files_only = run_in(*visible_);
  EXPECT_EQ(seen_.of(Kind::File, files_only.pid).size(), 5u);
  EXPECT_TRUE(seen_.of(Kind::Network, files_only.pid).empty());

  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), kVisibleNetwork).ok());
  const Ran network_only = run_in(*visible_);
  EXPECT_TRUE(seen_.of(Kind::File, network_only.pid).empty());
  EXPECT_GE(seen_.of(Kind::Network, network_only.pid).size(), 6u);

  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), 0).ok());
  const Ran removed = run_in(*visible_);
  EXPECT_TRUE(seen_.of(Kind::File, removed.pid).empty());
  EXPECT_TRUE(seen_.of(Kind::Network, removed.pid).empty());

  ASSERT_TRUE(monitor_->set_visibility(visible_->id(), kVisibleFile | kVisibleNetwork).ok());
  ASSERT_TRUE(monitor_->set_visibility(other_->id(), kVisibleFile).ok());
  monitor_->clear_visibility();
  const Ran cleared = run_in(*visible_);
  EXPECT_TRUE(seen_.of(Kind::File, cleared.pid).empty());
  EXPECT_TRUE(seen_.of(Kind::Network, cleared.pid).empty());
}

} // namespace
} // namespace corral::monitor
