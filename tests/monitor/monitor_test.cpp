// The system monitor against the real kernel: a fork, exec and exit of this test's own child
// are seen with the right parent, image, arguments and namespaces, and a process that ran
// before the monitor is known from /proc.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor/monitor.h"

namespace corral::monitor {
namespace {

struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;

  // Waits for an event of `kind` for process `tgid`; returns it.
  std::optional<Event> wait(Kind kind, int tgid) {
    std::unique_lock lock(mu);
    std::optional<Event> found;
    cv.wait_for(lock, std::chrono::seconds(5), [&] {
      for (const auto& e : events)
        if (e.kind == kind && e.process.tgid == tgid) found = e;
      return found.has_value();
    });
    return found;
  }
};

uint64_t inode_of(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 ? st.st_ino : 0;
}

TEST(Monitor, SeesAChildsForkExecAndExitWithItsParentAndArguments) {
  Seen seen;
  Monitor::Options o;
  o.on_event = [&seen](const Event& e) {
    std::lock_guard lock(seen.mu);
    seen.events.push_back(e);
    seen.cv.notify_all();
  };
  auto m = Monitor::start(o);
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
