// Issue 7, class 9: the agent proves that each workload is enforced (a canary exec through
// the workload's root must raise its group's own permission event) and reports a workload
// whose marks do not see it as NOT ENFORCED, with an alert — never a quiet pass.
#include <cerrno>
#include <thread>

#include "enforce/fanotify/canary.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "fixture.h"
#include "policy/parser.h"

namespace corral::testing {
namespace {

using State = enforce::Enforcement::State;

const std::string kBlockChroot = process_policy("block-chroot", "/usr/sbin/chroot", "Block");

const std::string kBlockSecret = R"(apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: block-secret
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchPaths:
    - path: /data/secret.txt
  action: Block
)";

// Waits for the proof to settle (two canaries of up to `timeout` each, and some slack).
enforce::Enforcement settled(const enforce::FanotifyEnforcer& e, const std::string& id,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + 2 * timeout + std::chrono::seconds(2);
  auto s = e.enforcement(id);
  while ((s.state == State::Proving || s.state == State::Unknown) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = e.enforcement(id);
  }
  return s;
}

TEST_F(FanotifyTest, AWorkloadWhoseMarksSeeItIsProvenEnforced) {
  start();
  const auto before = counters();
  enforce(kBlockChroot);
  const auto s = settled(*enforcer_, workload().id, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.state, State::Enforced) << s.reason;
  // The canary's event is not the workload's: not counted, not alerted.
  EXPECT_EQ(counters().denied, before.denied);
  EXPECT_EQ(counters().events, before.events);
  for (const auto& a : alerts()) EXPECT_NE(a.policy_name, "corral-enforcement-proof");
  // And the workload is enforced indeed.
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0);
}

TEST_F(FanotifyTest, AFileRulesOnlyWorkloadIsProvenByItsOpenEvent) {
  start();
  enforce(kBlockSecret, policy::Posture::Audit);
  const auto s = settled(*enforcer_, workload().id, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.state, State::Enforced) << s.reason;
  EXPECT_NE(run({"/usr/bin/cat", "/data/secret.txt"}).exit_code, 0);
}

TEST_F(FanotifyTest, AWorkloadWhoseMarksMissItIsReportedNotEnforcedAndAlerted) {
  const std::chrono::milliseconds timeout(300);
  start([&](auto& o) {
    o.test_unmarked = true; // marks that the workload's accesses never meet
    o.proof_timeout = timeout;
  });
  enforce(kBlockChroot);
  // What the issue saw: the group is in place and the forbidden program runs.
  EXPECT_EQ(counters().enforced, 1U);
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exit_code, 0);
  // Now it is said.
  const auto s = settled(*enforcer_, workload().id, timeout);
  ASSERT_EQ(s.state, State::NotEnforced);
  EXPECT_NE(s.reason.find("raised no event"), std::string::npos) << s.reason;
  // The canary's exec ran (nothing stopped it) and its seccomp filter killed it at once.
  EXPECT_NE(s.reason.find("seccomp"), std::string::npos) << s.reason;
  std::optional<events::Alert> alert;
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : alerts()) {
      if (a.policy_name == "corral-enforcement-proof") alert = a;
    }
    return alert.has_value();
  }));
  EXPECT_EQ(alert->container_id, workload().id);
  EXPECT_EQ(alert->result, "NOT ENFORCED");
  EXPECT_NE(alert->message.find("NOT ENFORCED"), std::string::npos) << alert->message;
  bool logged = false;
  for (const auto& m : logs()) logged = logged || m.find("NOT ENFORCED") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(FanotifyTest, EveryNewGroupIsProvenAgainAndReleaseForgetsTheProof) {
  start();
  enforce(kBlockChroot);
  EXPECT_EQ(settled(*enforcer_, workload().id, std::chrono::milliseconds(1500)).state,
            State::Enforced);
  enforce(process_policy("block-cat", "/usr/bin/cat", "Block")); // new rules: a new group
  EXPECT_EQ(settled(*enforcer_, workload().id, std::chrono::milliseconds(1500)).state,
            State::Enforced);
  EXPECT_EQ(run({"/usr/bin/cat", "/data/ro.txt"}).exec_errno, EPERM);
  enforcer_->release(workload().id);
  EXPECT_EQ(enforcer_->enforcement(workload().id).state, State::Unknown);
}

TEST_F(FanotifyTest, CanariesExecDistinctFilesOfTheWorkloadOnly) {
  // The sandbox's init is a fork of this test binary, which its root does not hold: the
  // canaries fall back to shells, one per file (/bin/sh and /usr/bin/sh are one file).
  const auto root = enforce::fanotify::read_link(workload().root_path);
  ASSERT_TRUE(root);
  const auto targets = enforce::fanotify::canary_targets(workload().init_pid, *root);
  EXPECT_EQ(targets, (std::vector<std::string>{"/bin/sh", "/bin/bash"}));
}

TEST_F(FanotifyTest, ProvingCanBeTurnedOff) {
  start([](auto& o) { o.prove = false; });
  enforce(kBlockChroot);
  EXPECT_EQ(enforcer_->enforcement(workload().id).state, State::Unknown);
}

} // namespace
} // namespace corral::testing

namespace corral::testing {
namespace {

// A workload chrooted into a directory inside a mount (not a mount's root): its mountinfo
// lists no mount at "/" (only mounts reachable from its root are shown), yet every access
// it makes goes through the mount holding that directory.
TEST_F(FanotifyTest, AWorkloadChrootedIntoASubdirectoryIsEnforcedAndProven) {
  auto options = default_sandbox();
  options.pivot_root = false;
  options.chroot_subdir = "/jail";
  auto jailed = Sandbox::make(options); // before start(): forks need one thread
  ASSERT_TRUE(jailed) << jailed.error().to_string();
  const auto w = (*jailed)->workload("jailed");
  start();
  const auto parsed = policy::parse_policies(kBlockChroot, "test.yaml");
  const auto rules = policy::compile(parsed.policies, w.policy_view(), policy::Settings{},
                                     enforce::fanotify::root_resolver(w.init_pid));
  const auto r = enforcer_->enforce(w, rules);
  ASSERT_TRUE(r) << r.error().to_string();
  const auto s = settled(*enforcer_, w.id, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.state, State::Enforced) << s.reason;
  const auto denied = (*jailed)->run({"/usr/sbin/chroot", "--version"});
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->exec_errno, EPERM);
  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->container_id, "jailed");
  const auto cat = (*jailed)->run({"/usr/bin/cat", "/data/ro.txt"});
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->exit_code, 0);
  enforcer_.reset(); // before the sandbox goes
}

} // namespace
} // namespace corral::testing
