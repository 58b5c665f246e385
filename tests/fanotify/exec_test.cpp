// Process rules through FAN_OPEN_EXEC_PERM (POLICY.md "Verdict", "Worked example").
#include <cerrno>
#include <cstdlib>

#include "fixture.h"

namespace corral::testing {
namespace {

using policy::Posture;

// POLICY.md's seed (Listing 2) for the sandbox: bash and true instead of nginx.
const char* const kSeed = R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: only-allow-sandbox-exec
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchDirectories:
    - dir: /
      recursive: true
  process:
    matchPaths:
    - path: /bin/bash
    - path: /bin/true
  action:
    Allow
)";

TEST_F(FanotifyTest, SeedDeniesAnUnlistedExecWithEpermAndAlerts) {
  enforce(kSeed, Posture::Block);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0);
  const auto bash = run({"/bin/bash", "-c", "chroot"});
  EXPECT_EQ(bash.exit_code, 126) << bash.output;
  EXPECT_NE(bash.output.find("/usr/sbin/chroot: Operation not permitted"), std::string::npos)
      << bash.output;
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);

  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "DefaultPosture");
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->operation, "Process");
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_EQ(a->data, "fanotify=FAN_OPEN_EXEC_PERM");
  EXPECT_EQ(a->enforcer, "fanotify");
  EXPECT_EQ(a->type, "MatchedPolicy");
  EXPECT_EQ(a->container_id, workload().id);
  EXPECT_EQ(a->container_image, workload().image);
  EXPECT_EQ(a->namespace_name, "default");
  EXPECT_EQ(a->labels, "app=sandbox");
  EXPECT_EQ(a->process_name, "/usr/sbin/chroot");
  EXPECT_EQ(a->parent_process_name, "/usr/bin/bash");
  EXPECT_EQ(a->source, "/usr/bin/bash -c chroot");
  EXPECT_GT(a->host_pid, 0);
  EXPECT_GT(a->pid, 1); // the pid inside the sandbox's pid namespace
  EXPECT_LT(a->pid, a->host_pid);
  EXPECT_EQ(a->ppid, 1); // the sandbox init ran bash
  EXPECT_GT(a->timestamp, 0);
  EXPECT_TRUE(a->updated_time.ends_with("Z")) << a->updated_time;
  for (const auto& other : alerts()) EXPECT_NE(other.resource, "/usr/bin/true");
  EXPECT_EQ(counters().errors_allowed, 0U);
  EXPECT_EQ(counters().timeouts_allowed, 0U);
  EXPECT_EQ(logs(), std::vector<std::string>{}); // every mount but /proc marked, no errors
}

TEST_F(FanotifyTest, TheHostIsUntouched) {
  enforce(kSeed, Posture::Block);
  ASSERT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  const auto before = counters().events;
  // The same binary, on the host: no mark there, so no event and no denial.
  EXPECT_EQ(std::system("/usr/sbin/chroot --version >/dev/null"), 0);
  EXPECT_EQ(counters().events, before);
}

TEST_F(FanotifyTest, AuditPassesAndAlerts) {
  enforce(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: audit-true
spec:
  selector:
    matchLabels:
      app: sandbox
  severity: 5
  tags: [MITRE, T1059]
  message: true was run
  process:
    matchPaths:
    - path: /bin/true
  action: Audit
)");
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0);
  const auto a = alert_for("/usr/bin/true");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "audit-true");
  EXPECT_EQ(a->action, "Audit");
  EXPECT_EQ(a->result, "Passed");
  EXPECT_EQ(a->severity, "5");
  EXPECT_EQ(a->tags, "MITRE,T1059");
  EXPECT_EQ(a->atags, (std::vector<std::string>{"MITRE", "T1059"}));
  EXPECT_EQ(a->message, "true was run");
  // Read before the answer: the caller's image, not the exec'd one.
  EXPECT_NE(a->parent_process_name, "/usr/bin/true");
  EXPECT_EQ(counters().denied, 0U);
}

TEST_F(FanotifyTest, AuditPostureAllowsUnlistedExecsWithAnAlert) {
  enforce(kSeed, Posture::Audit);
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exit_code, 0);
  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "DefaultPosture");
  EXPECT_EQ(a->action, "Audit");
  EXPECT_EQ(a->result, "Passed");
}

TEST_F(FanotifyTest, BlockRuleDeniesOnlyItsTarget) {
  enforce(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: block-chroot
spec:
  selector:
    matchLabels:
      app: sandbox
  process:
    matchPaths:
    - path: /usr/sbin/chroot
      severity: 7
      message: no chroot here
  action: Block
)",
          Posture::Block);
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0); // no Allow rules: the posture does not apply
  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "block-chroot");
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->severity, "7");
  EXPECT_EQ(a->message, "no chroot here");
  EXPECT_EQ(counters().denied, 1U);
}

TEST_F(FanotifyTest, InterpretersOfAnAllowedExecAreAllowedWithIt) {
  start([](auto& o) { o.cache = false; }); // every exec asks, so every interpreter does
  enforce(process_policy("allow-true-and-script",
                         std::vector<std::string>{"/bin/true", "/usr/local/bin/hello.sh"}, "Allow"),
          Posture::Block);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0); // + ld-linux (PT_INTERP)
  EXPECT_EQ(counters().interpreters, 1U);
  const auto script = run({"/usr/local/bin/hello.sh"}); // + /bin/sh (#!) + its ld-linux
  EXPECT_EQ(script.exit_code, 0) << script.output;
  EXPECT_EQ(script.output, "hello\n");
  EXPECT_EQ(counters().interpreters, 3U);
  // The same interpreters exec'd directly are judged on their own paths.
  EXPECT_EQ(run({"/lib64/ld-linux-x86-64.so.2", "/usr/bin/true"}).exec_errno, EPERM);
  EXPECT_EQ(run({"/bin/sh", "-c", "true"}).exec_errno, EPERM);
  EXPECT_TRUE(alert_for("/usr/lib64/ld-linux-x86-64.so.2"));
  EXPECT_EQ(counters().denied, 2U);
}

TEST_F(FanotifyTest, FromSourceOfAProcessRuleIsTheCallerOfExec) {
  enforce(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: chroot-only-from-bash
spec:
  selector:
    matchLabels:
      app: sandbox
  process:
    matchPaths:
    - path: /bin/bash
    - path: /bin/true
    - path: /usr/sbin/chroot
      fromSource:
      - path: /bin/bash
  action: Allow
)",
          Posture::Block);
  // bash execs chroot (allowed: its caller is bash), chroot execs true (allowed).
  const auto viabash = run({"/bin/bash", "-c", "chroot / /bin/true"});
  EXPECT_EQ(viabash.exit_code, 0) << viabash.output;
  // The sandbox init (the test binary) is not bash.
  EXPECT_EQ(run({"/usr/sbin/chroot", "/", "/bin/true"}).exec_errno, EPERM);
}

} // namespace
} // namespace corral::testing
