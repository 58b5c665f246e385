// File rules through FAN_OPEN_PERM, with the open mode read from the blocked syscall.
#include "fixture.h"

namespace corral::testing {
namespace {

std::string file_policy(const std::string& name, const std::string& rule) {
  return R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: )" +
         name +
         R"(
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchPaths:
)" + rule +
         R"(
  action: Block
)";
}

TEST_F(FanotifyTest, ReadOnlyBlockDeniesWritesAndLetsReadsThrough) {
  enforce(file_policy("ro-data", "    - path: /data/ro.txt\n      readOnly: true"));
  const auto read = run({"/usr/bin/cat", "/data/ro.txt"});
  EXPECT_EQ(read.exit_code, 0);
  EXPECT_EQ(read.output, "read me\n");
  const auto write = run({"/bin/sh", "-c", "echo x >> /data/ro.txt"});
  EXPECT_NE(write.exit_code, 0);
  EXPECT_NE(write.output.find("Operation not permitted"), std::string::npos) << write.output;
  EXPECT_EQ(run({"/usr/bin/cat", "/data/ro.txt"}).output, "read me\n"); // unchanged

  const auto a = alert_for("/data/ro.txt");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->operation, "File");
  EXPECT_EQ(a->data, "fanotify=FAN_OPEN_PERM");
  EXPECT_EQ(a->policy_name, "ro-data");
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_EQ(a->process_name, "/usr/bin/sh");
  EXPECT_EQ(a->source, "/usr/bin/sh -c echo x >> /data/ro.txt");
  EXPECT_EQ(counters().denied, 1U);
  EXPECT_EQ(counters().write_unknown, 0U);
}

TEST_F(FanotifyTest, BlockDeniesEveryOpenOfItsTarget) {
  enforce(file_policy("no-secret", "    - path: /data/secret.txt"));
  const auto r = run({"/usr/bin/cat", "/data/secret.txt"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("Operation not permitted"), std::string::npos) << r.output;
  EXPECT_EQ(run({"/usr/bin/cat", "/data/ro.txt"}).exit_code, 0);
  ASSERT_TRUE(alert_for("/data/secret.txt"));
}

TEST_F(FanotifyTest, OwnerOnlyBlockLetsOnlyTheOwnerThrough) {
  enforce(file_policy("owner-only", "    - path: /data/owned.txt\n      ownerOnly: true"));
  EXPECT_EQ(run({"/usr/bin/cat", "/data/owned.txt"}).exit_code, 0); // root owns it
  const auto other = run({"/usr/bin/cat", "/data/owned.txt"}, 1000);
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.output.find("Operation not permitted"), std::string::npos) << other.output;
  const auto a = alert_for("/data/owned.txt");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->uid, 1000);
}

TEST_F(FanotifyTest, FileAllowListWithBlockPostureDeniesOtherFiles) {
  enforce(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: only-usr
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchDirectories:
    - dir: /usr/
      recursive: true
  action: Allow
)",
          policy::Posture::Block);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0);
  const auto r = run({"/usr/bin/cat", "/data/ro.txt"});
  EXPECT_EQ(r.exit_code, 1);
  const auto a = alert_for("/data/ro.txt");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "DefaultPosture");
  EXPECT_EQ(a->process_name, "/usr/bin/cat");
}

} // namespace
} // namespace corral::testing
