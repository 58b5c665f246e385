// The kernel cache: inode ignore marks for allows that cannot depend on the subject.
#include <cerrno>

#include "enforce/fanotify/proc_reader.h"
#include "fixture.h"

namespace corral::testing {
namespace {

TEST_F(FanotifyTest, CachedExecsProduceNoFurtherEvents) {
  enforce(process_policy("block-chroot", "/usr/sbin/chroot", "Block"));
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0); // true and ld-linux: both allowed, both cached
  ASSERT_TRUE(eventually([&] { return counters().cached >= 2; }));
  const auto before = counters();
  const auto r = loop({"/bin/true"}, 1000);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.exec_errno, 0);
  EXPECT_EQ(counters().events, before.events);
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM); // never cached
}

TEST_F(FanotifyTest, UnderAnAllowListOnlyTheInterpreterStillAsks) {
  // ld-linux is not allowed on its own, so it cannot be cached (a direct exec of it would
  // pass); the allowed binary is, and its interpreter is recognised by the kernel stack.
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  if (enforce::fanotify::kernel_stacks_readable()) {
    ASSERT_TRUE(eventually([&] { return counters().cached >= 1; }));
  }
  const auto before = counters();
  const auto r = loop({"/bin/true"}, 1000);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.exec_errno, 0);
  const auto after = counters();
  const uint64_t per_exec = enforce::fanotify::kernel_stacks_readable() ? 1 : 2;
  EXPECT_EQ(after.events - before.events, per_exec * 1000);
  EXPECT_EQ(after.interpreters - before.interpreters, 1000U);
  EXPECT_EQ(after.denied, before.denied);
  EXPECT_EQ(run({"/lib64/ld-linux-x86-64.so.2", "/usr/bin/true"}).exec_errno, EPERM);
}

TEST_F(FanotifyTest, WithoutTheCacheEveryExecAsks) {
  start([](auto& o) { o.cache = false; });
  enforce(process_policy("block-chroot", "/usr/sbin/chroot", "Block"));
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  const auto before = counters().events;
  EXPECT_EQ(loop({"/bin/true"}, 1000).exit_code, 0);
  EXPECT_EQ(counters().events - before, 2000U); // true + ld-linux, each time
  EXPECT_EQ(counters().cached, 0U);
}

TEST_F(FanotifyTest, NewRulesFlushTheCache) {
  enforce(process_policy("block-chroot", "/usr/sbin/chroot", "Block"));
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return counters().cached >= 1; }));
  enforce(process_policy("block-true", "/bin/true", "Block"));
  EXPECT_EQ(run({"/bin/true"}).exec_errno, EPERM);
  EXPECT_EQ(counters().enforced, 1U);
  const auto a = alert_for("/usr/bin/true");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "block-true");
}

TEST_F(FanotifyTest, SubjectDependentRulesAreNotCached) {
  enforce(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ro-everything
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchDirectories:
    - dir: /data/
      readOnly: true
  action: Block
)");
  ASSERT_EQ(run({"/usr/bin/cat", "/data/ro.txt"}).exit_code, 0);
  ASSERT_EQ(run({"/usr/bin/cat", "/data/ro.txt"}).exit_code, 0);
  EXPECT_EQ(counters().cached, 0U);
  EXPECT_NE(run({"/bin/sh", "-c", "echo x > /data/ro.txt"}).exit_code, 0); // still asked
}

} // namespace
} // namespace corral::testing
