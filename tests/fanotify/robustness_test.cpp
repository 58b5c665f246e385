// What must not break: release, processes dying mid-event, slow decisions, the host's own
// mount namespace, and runtimes that chroot instead of pivot_root.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <iostream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "fixture.h"
#include "policy/parser.h"

namespace corral::testing {
namespace {

const std::string kBlockChroot = process_policy("block-chroot", "/usr/sbin/chroot", "Block");

bool dead_or_zombie(int pid) {
  const auto stat = enforce::fanotify::read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  const size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
}

TEST_F(FanotifyTest, ReleaseLiftsEnforcement) {
  enforce(kBlockChroot);
  ASSERT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  enforcer_->release(workload().id);
  EXPECT_EQ(counters().enforced, 0U);
  const auto events = counters().events;
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exit_code, 0);
  EXPECT_EQ(counters().events, events);
  enforcer_->release(workload().id); // twice: a no-op
}

TEST_F(FanotifyTest, AProcessKilledWhileItsEventIsPendingBreaksNothing) {
  std::atomic<bool> armed{false};
  std::atomic<bool> died_before_answer{false};
  std::atomic<bool> hook_done{false};
  start([&](auto& o) {
    o.on_event = [&](int tid, uint64_t) {
      if (!armed.exchange(false)) return;
      ::kill(tid, SIGKILL);
      for (int i = 0; i < 200 && !died_before_answer; ++i) {
        died_before_answer = dead_or_zombie(tid);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      hook_done = true;
    };
  });
  // Audit: the alert is built from /proc of a process that is gone.
  enforce(process_policy("audit-true", "/bin/true", "Audit"));
  armed = true;
  const auto killed = run({"/bin/true"});
  EXPECT_EQ(killed.signal, SIGKILL);
  ASSERT_TRUE(eventually([&] { return hook_done.load(); }));
  std::cout << "kernel: a task waiting for a permission verdict "
            << (died_before_answer ? "dies at once on SIGKILL" : "dies only after the verdict")
            << "\n";
  const auto a = alert_for("/usr/bin/true");
  ASSERT_TRUE(a);
  EXPECT_GT(a->host_pid, 0);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0); // the enforcer goes on
  EXPECT_EQ(counters().timeouts_allowed, 0U);
  EXPECT_EQ(counters().timeouts_denied, 0U);
  enforcer_.reset(); // the hook refers to this test's locals
}

// Under a block-list the undecidable verdict is allow (overload_test.cpp: posture block).
TEST_F(FanotifyTest, ADecisionBeyondTheBoundUnderABlockListIsAllowedAndCounted) {
  std::atomic<bool> armed{false};
  start([&](auto& o) {
    o.reply_bound = std::chrono::milliseconds(100);
    o.on_event = [&](int, uint64_t) {
      if (armed.exchange(false)) std::this_thread::sleep_for(std::chrono::milliseconds(600));
    };
  });
  enforce(kBlockChroot);
  armed = true;
  const auto slow = run({"/usr/sbin/chroot", "--version"});
  EXPECT_EQ(slow.exit_code, 0) << "a block-list's undecidable verdict is allow";
  EXPECT_GE(counters().timeouts_allowed, 1U);
  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->result, "Passed");                                      // what the kernel was told
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM); // back to normal
  enforcer_.reset(); // the hook refers to this test's locals
}

TEST_F(FanotifyTest, RefusesAWorkloadInTheAgentsMountNamespace) {
  start();
  auto w = workload();
  w.id = "host-like";
  w.init_pid = ::getpid();
  const auto r = enforcer_->enforce(w, compile(kBlockChroot, policy::Posture::Audit));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("mount namespace"), std::string::npos) << r.error().message;
  EXPECT_EQ(counters().enforced, 0U);
  EXPECT_EQ(std::system("/usr/sbin/chroot --version >/dev/null"), 0);
}

TEST_F(FanotifyTest, AWorkloadWhoseProcessIsGoneIsAnError) {
  const pid_t child = ::fork();
  if (child == 0) _exit(0);
  ::waitpid(child, nullptr, 0);
  start();
  auto w = workload();
  w.init_pid = child;
  const auto r = enforcer_->enforce(w, compile(kBlockChroot, policy::Posture::Audit));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(std::to_string(child)), std::string::npos) << r.error().message;
  EXPECT_EQ(counters().enforced, 0U);
}

TEST_F(FanotifyTest, AChrootedWorkloadSeesPathsRelativeToItsRoot) {
  auto options = default_sandbox();
  options.pivot_root = false;
  auto chrooted = Sandbox::make(options); // before start(): forks need one thread
  ASSERT_TRUE(chrooted) << chrooted.error().to_string();
  const auto w = (*chrooted)->workload("chrooted");
  const auto prefix = enforce::fanotify::read_link(w.root_path);
  ASSERT_TRUE(prefix);
  EXPECT_NE(*prefix, "/"); // readlink shows the host directory it was chrooted into
  start();
  const auto parsed = policy::parse_policies(kBlockChroot, "test.yaml");
  const auto rules = policy::compile(parsed.policies, w.policy_view(), policy::Settings{},
                                     enforce::fanotify::root_resolver(w.init_pid));
  ASSERT_TRUE(enforcer_->enforce(w, rules));
  // Proven: its canary exec through the chrooted root raised its group's event.
  EXPECT_TRUE(eventually([&] {
    return enforcer_->enforcement(w.id).state == enforce::Enforcement::State::Enforced;
  })) << enforcer_->enforcement(w.id).reason;
  // The shared sandbox, enforced at the same time with other rules: each its own group.
  enforce(process_policy("block-cat", "/usr/bin/cat", "Block"));
  EXPECT_EQ(counters().enforced, 2U);
  const auto r = (*chrooted)->run({"/usr/sbin/chroot", "--version"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exec_errno, EPERM);
  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->container_id, "chrooted");
  const auto cat = (*chrooted)->run({"/usr/bin/cat", "/data/ro.txt"});
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->exit_code, 0); // cat is blocked only in the other workload
  EXPECT_EQ(run({"/usr/bin/cat", "/data/ro.txt"}).exec_errno, EPERM);
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exit_code, 0);
  enforcer_.reset(); // before the sandbox goes
}

} // namespace
} // namespace corral::testing
