// The implicit start-up set and the exec's own opens under a file allow-list (POLICY.md
// "Implicit start-up reads", docs/policy.md): allowed programs start, and a root shell in the
// workload cannot use the set to read, write or run anything the allow-list denies.
#include <filesystem>

#include "fixture.h"

namespace corral::testing {
namespace {

// Only /app/ may be opened and only the shell and cat run; everything else: posture block.
const std::string kAllowList = R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: startup-allow-list
spec:
  selector:
    matchLabels:
      app: sandbox
  process:
    matchPaths:
    - path: /bin/bash
    - path: /usr/bin/cat
  file:
    matchDirectories:
    - dir: /app/
      recursive: true
  action: Allow
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: block-group
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchPaths:
    - path: /etc/group
  action: Block
)";

bool denied(const RunResult& r) {
  return r.exit_code != 0 && r.output.find("Operation not permitted") != std::string::npos;
}

// The default-posture alert for an access of `operation` (the fixture's suite keeps one
// sandbox for all its tests, so these are FanotifyTest tests).
void expect_posture_alert(const std::optional<events::Alert>& a, const std::string& operation) {
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "DefaultPosture");
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->operation, operation);
  EXPECT_EQ(a->result, "Permission denied");
}

TEST_F(FanotifyTest, StartupSetAllowedProgramsStartAndReadTheSetUnalerted) {
  enforce(kAllowList, policy::Posture::Block);
  // The exec's own open of cat and ld.so, ld.so's reads of the libraries, cat's read of
  // /etc/passwd: none is under /app/, none is denied or alerted.
  const auto r = run({"/usr/bin/cat", "/etc/passwd"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("root:x:0:0"), std::string::npos) << r.output;
  const auto shell = run({"/bin/bash", "-c", ": < /etc/passwd && echo read"});
  EXPECT_EQ(shell.exit_code, 0) << shell.output;
  // (bash's probe of /dev/tty for write is the allow-list's business, not the set's.)
  for (const auto& a : alerts()) {
    if (!a.resource.starts_with("/dev/")) ADD_FAILURE() << "alert for " << a.resource;
  }
}

TEST_F(FanotifyTest, StartupSetASecretOutsideTheSetIsDenied) {
  enforce(kAllowList, policy::Posture::Block);
  EXPECT_TRUE(denied(run({"/usr/bin/cat", "/data/secret.txt"})));
  expect_posture_alert(alert_for("/data/secret.txt"), "File");
}

TEST_F(FanotifyTest, StartupSetWritingIntoTheSetIsDenied) {
  enforce(kAllowList, policy::Posture::Block);
  EXPECT_TRUE(denied(run({"/bin/bash", "-c", "echo evil::0:0::/:/bin/sh >> /etc/passwd"})));
  expect_posture_alert(alert_for("/etc/passwd"), "File");
  // Read-write is a write too.
  EXPECT_TRUE(denied(run({"/bin/bash", "-c", ": <> /etc/passwd"})));
  EXPECT_EQ(read_host(host_path("/etc/passwd")).find("evil"), std::string::npos);
}

TEST_F(FanotifyTest, StartupSetRunningAFileOfTheSetIsJudgedByTheProcessRules) {
  enforce(kAllowList, policy::Posture::Block);
  // glibc's libc.so.6 is an executable program: its exec is a Process access, denied.
  const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  ASSERT_TRUE(std::filesystem::exists(host_path(libc))) << "the sandbox has no " << libc;
  const auto r = run({"/bin/bash", "-c", libc});
  EXPECT_NE(r.exit_code, 0) << r.output;
  const auto a = alert_for(libc);
  ASSERT_TRUE(a) << r.output;
  EXPECT_EQ(a->operation, "Process");
  EXPECT_EQ(a->result, "Permission denied");
}

TEST_F(FanotifyTest, StartupSetASecretMovedOrLinkedIntoTheSetIsStillDenied) {
  enforce(kAllowList, policy::Posture::Block);
  // A secret the image keeps among the libraries is not a shared object: denied. Renamed or
  // hard-linked to a library name, its inode's ctime changes, so it is not a file the image
  // shipped there, and the allow-list still judges it.
  const std::string secret = "/usr/lib/x86_64-linux-gnu/secret.conf";
  EXPECT_TRUE(denied(run({"/usr/bin/cat", secret})));
  expect_posture_alert(alert_for(secret), "File");

  const std::string leak = "/usr/lib/x86_64-linux-gnu/libleak.so.1";
  std::filesystem::rename(host_path(secret), host_path(leak));
  const auto moved = run({"/usr/bin/cat", leak});
  std::filesystem::rename(host_path(leak), host_path(secret));
  EXPECT_TRUE(denied(moved)) << moved.output;
  expect_posture_alert(alert_for(leak), "File");

  const std::string linked = "/usr/lib/x86_64-linux-gnu/liblinked.so";
  std::filesystem::create_hard_link(host_path(secret), host_path(linked));
  const auto via_link = run({"/usr/bin/cat", linked});
  std::filesystem::remove(host_path(linked));
  EXPECT_TRUE(denied(via_link)) << via_link.output;
  expect_posture_alert(alert_for(linked), "File");
}

TEST_F(FanotifyTest, StartupSetABlockRuleBeatsTheSet) {
  enforce(kAllowList, policy::Posture::Block);
  EXPECT_TRUE(denied(run({"/usr/bin/cat", "/etc/group"})));
  const auto a = alert_for("/etc/group");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "block-group");
  EXPECT_EQ(a->action, "Block");
}

TEST_F(FanotifyTest, StartupSetTheExecsOwnOpenIsNotAReadOfTheProgram) {
  enforce(kAllowList, policy::Posture::Block);
  // cat may run, but reading its file is a file access the allow-list denies.
  EXPECT_TRUE(denied(run({"/usr/bin/cat", "/usr/bin/cat"})));
  expect_posture_alert(alert_for("/usr/bin/cat"), "File");
}

} // namespace
} // namespace corral::testing
