// Overload and slow decisions (issue 7, class 6): no verdict by timeout becomes an allow for
// a workload that must fail closed, and one workload's flood cannot decide for another.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>

#include <sys/fanotify.h>

#include "enforce/fanotify/root_fs.h"
#include "fixture.h"
#include "policy/parser.h"

namespace corral::testing {
namespace {

const std::string kAllowTrue = process_policy("allow-true", "/bin/true", "Allow");

TEST_F(FanotifyTest, ADecisionBeyondTheBoundUnderPostureBlockIsDenied) {
  std::atomic<bool> armed{false};
  std::atomic<int> slept{0};
  start([&](auto& o) {
    o.reply_bound = std::chrono::milliseconds(100);
    o.on_event = [&](int, uint64_t) {
      if (!armed.exchange(false)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      ++slept;
    };
  });
  enforce(kAllowTrue, policy::Posture::Block);
  armed = true;
  // chroot is not on the allow-list: a late verdict must not let it run.
  const auto slow = run({"/usr/sbin/chroot", "--version"});
  EXPECT_EQ(slow.exec_errno, EPERM) << "exit " << slow.exit_code << ": " << slow.output;
  EXPECT_GE(counters().timeouts_denied, 1U);
  EXPECT_EQ(counters().timeouts_allowed, 0U);
  // The watchdog's answer is timed too (corral_permission_decision_seconds): from the read,
  // at least the bound, so beyond the 50 ms bucket.
  const auto latency = counters().decision_latency;
  EXPECT_EQ(latency.cumulative.back(), latency.count);
  EXPECT_GE(latency.count - latency.cumulative[11], 1U);
  EXPECT_EQ(LatencyHistogram::kBoundsNs[11], 50'000'000U);
  // An allowed program stuck the same way is denied too (the watchdog cannot judge it) ...
  ASSERT_TRUE(eventually([&] { return slept == 1; }));
  armed = true;
  EXPECT_EQ(run({"/usr/bin/true"}).exec_errno, EPERM);
  // ... and runs once decisions are prompt again.
  ASSERT_TRUE(eventually([&] { return slept == 2; }));
  EXPECT_EQ(run({"/usr/bin/true"}).exit_code, 0);
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  enforcer_.reset(); // the hook refers to this test's locals
}

// A handler that stays stuck for longer than many bounds: the group's later events are
// still answered within about a bound (never left hanging), with the undecidable verdict.
TEST_F(FanotifyTest, AStuckHandlerLeavesNoEventHanging) {
  std::atomic<bool> armed{false};
  std::atomic<bool> release{false};
  start([&](auto& o) {
    o.reply_bound = std::chrono::milliseconds(100);
    o.on_event = [&](int, uint64_t) {
      if (!armed.exchange(false)) return;
      for (int i = 0; i < 500 && !release; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    };
  });
  enforce(kAllowTrue, policy::Posture::Block);
  armed = true;
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  // The worker is still stuck in the first event: these queue behind it.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  EXPECT_GE(counters().timeouts_denied, 4U);
  release = true;
  EXPECT_TRUE(eventually([&] { return run({"/usr/bin/true"}).exit_code == 0; }));
  enforcer_.reset();
}

// One responder thread, stuck on one workload's decision for long: another thread is
// started, and the neighbour keeps its real verdicts (its allowed program runs, which the
// undecidable verdict of its allow-list would deny).
TEST_F(FanotifyTest, WhenEveryResponderIsStuckAnotherServesTheNeighbours) {
  SandboxOptions so;
  so.programs = {"/usr/bin/true"};
  auto stuck = Sandbox::make(so); // before start(): forks need one thread
  ASSERT_TRUE(stuck) << stuck.error().to_string();
  const auto sw = (*stuck)->workload("stuck");
  std::atomic<bool> armed{false};
  std::atomic<bool> release{false};
  start([&](auto& o) {
    o.reply_bound = std::chrono::milliseconds(100);
    o.responder_threads = 1;
    o.on_event = [&](int, uint64_t) {
      if (!armed.exchange(false)) return;
      for (int i = 0; i < 300 && !release; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    };
  });
  ASSERT_TRUE(enforcer_->enforce(sw, compile(kAllowTrue, policy::Posture::Block)));
  enforce(kAllowTrue, policy::Posture::Block);
  armed = true;
  std::thread t([&] { (void)(*stuck)->run({"/usr/bin/true"}); });
  EXPECT_TRUE(eventually([&] { return !armed; })); // the only thread is in the hook
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  EXPECT_EQ(run({"/usr/bin/true"}).exit_code, 0);
  const auto log = logs();
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& m) {
    return m.find("starting another") != std::string::npos;
  }));
  release = true;
  t.join();
  enforcer_.reset(); // before the sandbox goes
}

// The neighbour: a sandbox with file rules floods new-file opens (each a new inode, so
// nothing is cached) and its decisions are slow; the shared sandbox, under a process
// allow-list with posture block, keeps its own verdicts meanwhile.
TEST_F(FanotifyTest, AFloodInOneWorkloadDecidesNothingForItsNeighbour) {
  SandboxOptions fo;
  fo.programs = {"/usr/bin/bash"};
  fo.files = {{"/data/seed.txt", "x\n", 0644}};
  auto flooder = Sandbox::make(fo); // before start(): forks need one thread
  ASSERT_TRUE(flooder) << flooder.error().to_string();
  auto fw = (*flooder)->workload("flooder");
  fw.labels = {{"app", "flooder"}};
  std::atomic<bool> flooding{true};
  start([&](auto& o) {
    o.reply_bound = std::chrono::milliseconds(100);
    // The flooder's decisions are slow (a loaded node): 40 ms per file open, so that a
    // batch of its events outlasts the bound (each of its shells has one open pending).
    o.on_event = [&](int, uint64_t mask) {
      if (flooding && (mask & FAN_OPEN_PERM) != 0 && (mask & FAN_OPEN_EXEC_PERM) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(40));
    };
  });
  const auto parsed = policy::parse_policies(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: flooder-files
spec:
  selector:
    matchLabels:
      app: flooder
  file:
    matchPaths:
    - path: /data/secret.txt
  action: Block
)",
                                             "flooder.yaml");
  ASSERT_TRUE(parsed.diagnostics.empty());
  ASSERT_TRUE(
      enforcer_->enforce(fw, policy::compile(parsed.policies, fw.policy_view(), policy::Settings{},
                                             enforce::fanotify::root_resolver(fw.init_pid))));
  enforce(kAllowTrue, policy::Posture::Block);
  EXPECT_EQ(counters().enforced, 2U);

  std::thread flood([&] {
    const auto r = (*flooder)->run(
        {"/usr/bin/bash", "-c",
         "for t in 1 2 3 4 5 6 7 8; do (i=0; while ((SECONDS < 6)); do : > /data/f$t.$i; "
         "i=$((i+1)); done) & done; wait"});
    EXPECT_TRUE(r) << r.error().to_string();
    flooding = false;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int denied = 0, passed = 0, allowed_ran = 0, rounds = 0;
  for (; rounds < 20 && flooding; ++rounds) {
    const auto forbidden = run({"/usr/sbin/chroot", "--version"});
    (forbidden.exec_errno == EPERM ? denied : passed)++;
    if (run({"/usr/bin/true"}).exit_code == 0) ++allowed_ran;
  }
  flood.join();
  EXPECT_GT(rounds, 0) << "the flood ended before the neighbour's checks began";
  EXPECT_EQ(passed, 0) << denied << " of " << rounds << " forbidden execs denied";
  EXPECT_EQ(allowed_ran, rounds);
  std::cout << "during the flood: " << counters().timeouts_allowed
            << " events answered by the watchdog with the flooder's undecidable verdict "
               "(allow under a block-list); the neighbour's timed out: "
            << counters().timeouts_denied << "\n";
  enforcer_.reset(); // before the sandbox goes
}

// Issue 13: cached allows (inode ignore marks) count against the kernel's max_user_marks,
// which every new group's mount marks need too. A workload running one program after another
// fills the node's whole cache budget at most (here 3), its verdicts stay right beyond it,
// and a replaced group gives its marks back.
TEST_F(FanotifyTest, CachedAllowsStopAtTheNodesBudgetAndVerdictsHoldBeyondIt) {
  start([](enforce::FanotifyEnforcer::Options& o) { o.max_cached_total = 3; });
  const std::string block_chroot = R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: no-chroot
spec:
  selector:
    matchLabels:
      app: sandbox
  process:
    matchPaths:
    - path: /usr/sbin/chroot
  action: Block
)";
  enforce(block_chroot);
  // Programs no earlier test of the suite rewrites in the shared sandbox.
  const std::vector<std::vector<std::string>> programs = {
      {"/usr/bin/true"}, {"/usr/bin/cat"}, {"/bin/sh", "-c", ":"}, {"/usr/bin/bash", "-c", ":"}};
  for (int round = 0; round < 2; ++round) {
    for (const auto& p : programs) EXPECT_EQ(run(p).exit_code, 0) << p[0];
    EXPECT_NE(run({"/usr/sbin/chroot", "/", "/usr/bin/true"}).exit_code, 0);
  }
  EXPECT_TRUE(eventually([&] { return counters().cache_marks == 3; }));
  EXPECT_EQ(counters().cached, 3U);              // none placed beyond the budget
  EXPECT_GT(counters().events, programs.size()); // the rest still ask, and are answered

  // New rules: a new group, and the old one's marks are given back before it caches again.
  enforce(block_chroot + "  message: new rules\n");
  EXPECT_TRUE(eventually([&] { return counters().cache_marks == 0; }));
  for (const auto& p : programs) EXPECT_EQ(run(p).exit_code, 0) << p[0];
  EXPECT_TRUE(eventually([&] { return counters().cache_marks == 3; }));
  EXPECT_NE(run({"/usr/sbin/chroot", "/", "/usr/bin/true"}).exit_code, 0);
}

} // namespace
} // namespace corral::testing
