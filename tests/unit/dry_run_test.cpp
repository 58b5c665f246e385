// Corral's per-policy dry run (metadata.annotations kubearmor-policy: audited): the policy
// denies nothing, while another policy of the same workload still does.
#include <gtest/gtest.h>

#include "policy/decide.h"
#include "policy/parser.h"
#include "test_util.h"

namespace corral::policy {
namespace {

std::string policy(std::string_view name, std::string_view mode, std::string_view sections) {
  std::string text = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n"
                     "  name: " +
                     std::string(name) + "\n";
  if (!mode.empty()) text += "  annotations:\n    kubearmor-policy: " + std::string(mode) + "\n";
  return text + "spec:\n  selector:\n    matchLabels:\n      app: nginx\n" + std::string(sections);
}

constexpr std::string_view kAllowBash = "  process:\n    matchPaths:\n    - path: /bin/bash\n"
                                        "  action: Allow\n";
constexpr std::string_view kBlockCat = "  process:\n    matchPaths:\n    - path: /bin/cat\n"
                                       "  action: Block\n";

Verdict run(const std::string& text, std::string_view exe) {
  static std::vector<ParseResult> keep; // the RuleSet points into the parsed policies
  keep.push_back(parse_policies(text, testing::kFile));
  EXPECT_TRUE(keep.back().ok()) << testing::dump(keep.back());
  Settings s;
  s.postures.file = Posture::Block;
  Workload w;
  w.labels = {{"app", "nginx"}};
  const auto rs = compile(keep.back().policies, w, s);
  Access a;
  a.category = Category::Process;
  a.target = exe;
  return decide(*rs, a);
}

TEST(PolicyDryRun, DeniesNothingAndSaysWhatItWouldHave) {
  const auto dry = policy("p", "audited", kAllowBash);
  EXPECT_TRUE(run(dry, "/bin/bash").allow);
  const auto posture = run(dry, "/bin/chroot");
  EXPECT_TRUE(posture.allow);
  EXPECT_TRUE(posture.alert);
  EXPECT_EQ(posture.action, "Audit (Block)");
  EXPECT_EQ(posture.policy_name(), "DefaultPosture");
  const auto block = run(policy("p", "audited", kBlockCat), "/bin/cat");
  EXPECT_TRUE(block.allow);
  EXPECT_EQ(block.action, "Audit (Block)");
  // Enabled (or no annotation): enforced.
  EXPECT_FALSE(run(policy("p", "enabled", kAllowBash), "/bin/chroot").allow);
  EXPECT_FALSE(run(policy("p", "", kAllowBash), "/bin/chroot").allow);
}

TEST(PolicyDryRun, OtherPoliciesStillDeny) {
  // A live Allow rule elsewhere keeps the posture's denials live.
  const auto both = policy("dry", "audited", kBlockCat) + "---\n" + policy("live", "", kAllowBash);
  EXPECT_FALSE(run(both, "/bin/chroot").allow);
  const auto cat = run(both, "/bin/cat"); // the dry policy's own Block rule
  EXPECT_TRUE(cat.allow);
  EXPECT_EQ(cat.action, "Audit (Block)");
  const auto live_block =
      policy("dry", "audited", kAllowBash) + "---\n" + policy("live", "", kBlockCat);
  EXPECT_FALSE(run(live_block, "/bin/cat").allow);
  const auto posture = run(live_block, "/bin/chroot"); // only dry Allow rules: posture dry
  EXPECT_TRUE(posture.allow);
  EXPECT_EQ(posture.action, "Audit (Block)");
}

TEST(PolicyDryRun, InvalidModeIsAnError) {
  const auto r = parse_policies(policy("p", "maybe", kAllowBash), testing::kFile);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(testing::has_error(r, "metadata.annotations.kubearmor-policy", 6, 23, "invalid value",
                                 "audited"))
      << testing::dump(r);
}

} // namespace
} // namespace corral::policy
