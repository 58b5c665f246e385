// The system monitor against the real kernel: a fork, exec and exit of this test's own child
// are seen with the right parent, image, arguments, namespaces and terminal, and a process
// that ran before the monitor is known from /proc. (File and network events:
// visibility_test.cpp.)
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "seen.h"

namespace corral::monitor {
namespace {

uint64_t inode_of(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 ? st.st_ino : 0;
}

TEST(Monitor, SeesAChildsForkExecAndExitWithItsParentAndArguments) {
  Seen seen;
  auto m = Monitor::start(seen.options());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  // Known before the monitor started: this test itself, from /proc.
  const auto self = (*m)->process(::getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(self->ppid, ::getppid());
  EXPECT_EQ(self->mntns, inode_of("/proc/self/ns/mnt"));

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl("/bin/sh", "sh", "-c", "exit 3", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 3);

  const auto fork = seen.wait(Kind::Fork, child);
  ASSERT_TRUE(fork.has_value()) << "no fork event for " << child;
  EXPECT_EQ(fork->process.ppid, ::getpid());
  EXPECT_EQ(fork->process.forked_by, ::getpid());
  const auto exec = seen.wait(Kind::Exec, child);
  ASSERT_TRUE(exec.has_value()) << "no exec event for " << child;
  EXPECT_EQ(exec->process.exe, "/bin/sh");
  EXPECT_EQ(exec->process.args, "sh -c exit 3");
  EXPECT_EQ(exec->process.ppid, ::getpid());
  EXPECT_EQ(exec->process.uid, ::getuid());
  EXPECT_EQ(exec->process.pidns, inode_of("/proc/self/ns/pid"));
  EXPECT_EQ(exec->process.mntns, inode_of("/proc/self/ns/mnt"));
  EXPECT_NE(exec->process.cgroup, 0u);
  const auto exit = seen.wait(Kind::Exit, child);
  ASSERT_TRUE(exit.has_value()) << "no exit event for " << child;
  EXPECT_EQ(exit->process.exit_code, 3 << 8);
  // Gone, and still known: who it was and who started it.
  const auto after = (*m)->process(child);
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->exited);
  EXPECT_EQ(after->exe, "/bin/sh");
  EXPECT_EQ(after->ppid, ::getpid());
  const auto stats = (*m)->stats();
  EXPECT_GE(stats.events[static_cast<int>(Kind::Exec)], 1u);
  EXPECT_EQ(stats.dropped[static_cast<int>(Kind::Exec)], 0u);
}

// Runs /bin/true in a new session; with `tty`, that terminal is made the session's
// controlling one first. Returns the child's pid after it exited 0, or -1.
pid_t run_true_in_session(const char* tty) {
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    if (::setsid() < 0) ::_exit(120);
    if (tty != nullptr) {
      const int fd = ::open(tty, O_RDWR);
      if (fd < 0 || ::ioctl(fd, TIOCSCTTY, 0) != 0) ::_exit(121);
    }
    ::execl("/bin/true", "true", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  return child;
}

TEST(Monitor, AnExecCarriesItsControllingTerminal) {
  Seen seen;
  auto m = Monitor::start(seen.options());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const std::string slave = ::ptsname(master); // "/dev/pts/N": the kernel names it "ptsN"
  const std::string expected = "pts" + slave.substr(slave.rfind('/') + 1);

  const pid_t with = run_true_in_session(slave.c_str());
  const pid_t without = run_true_in_session(nullptr);
  ::close(master);
  ASSERT_GT(with, 0);
  ASSERT_GT(without, 0);
  const auto exec = seen.wait(Kind::Exec, with);
  ASSERT_TRUE(exec.has_value()) << "no exec event for " << with;
  EXPECT_EQ(exec->process.tty, expected);
  EXPECT_EQ(exec->process.exe, "/bin/true");
  const auto bare = seen.wait(Kind::Exec, without);
  ASSERT_TRUE(bare.has_value()) << "no exec event for " << without;
  EXPECT_EQ(bare->process.tty, "");
}

} // namespace
} // namespace corral::monitor

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::geteuid() != 0) {
    std::puts("SKIP: monitor_test needs root (BPF programs)");
    return 77;
  }
  return RUN_ALL_TESTS();
}
