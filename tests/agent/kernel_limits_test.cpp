// The limits the agent raises at start (agent/kernel_limits.h): raised to the want, never
// lowered. Only the open-files limit is changed here (raising the soft limit up to the hard
// one needs no privilege); the fanotify sysctls are only read.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "agent/kernel_limits.h"

namespace corral::agent {
namespace {

struct RestoreNofile {
  rlimit saved{};
  RestoreNofile() { ::getrlimit(RLIMIT_NOFILE, &saved); }
  ~RestoreNofile() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

TEST(KernelLimits, RaisesTheOpenFilesLimitAndNeverLowersIt) {
  RestoreNofile restore;
  rlimit r = restore.saved;
  if (r.rlim_max < 200) GTEST_SKIP() << "hard open-files limit below 200";
  r.rlim_cur = 100;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  const auto raised = raise_kernel_limits(LimitWants{0, 0, 150});
  EXPECT_EQ(raised.open_files, 150u);
  EXPECT_TRUE(raised.problems.empty());
  const auto kept = raise_kernel_limits(LimitWants{0, 0, 120}); // lower: left as is
  EXPECT_EQ(kept.open_files, 150u);
}

TEST(KernelLimits, ReadsTheFanotifyLimitsAndLeavesThemWhenNothingIsWanted) {
  const auto before = read_kernel_limits();
  EXPECT_GT(before.fanotify_groups, 0u);
  EXPECT_GT(before.fanotify_marks, 0u);
  const auto after = raise_kernel_limits(LimitWants{});
  EXPECT_EQ(after.fanotify_groups, before.fanotify_groups);
  EXPECT_EQ(after.fanotify_marks, before.fanotify_marks);
  EXPECT_TRUE(after.problems.empty());
}

} // namespace
} // namespace corral::agent
