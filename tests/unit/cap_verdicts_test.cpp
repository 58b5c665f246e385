// The capability backend's verdict table (enforce/capabilities/verdicts.h): what the kernel
// programs look up must be what decide() says, for any program and per fromSource program.
#include <string>

#include <gtest/gtest.h>

#include "enforce/capabilities/verdicts.h"
#include "policy/parser.h"

namespace corral::enforce::capabilities {
namespace {

constexpr int kChown = 0, kFowner = 3, kNetRaw = 13, kSysAdmin = 21;

// A policy for app=x in namespace ns whose spec ends with `body`.
std::string policy_text(const std::string& body) {
  return "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n"
         "  name: caps\n  namespace: ns\nspec:\n  selector:\n    matchLabels:\n      app: x\n" +
         body;
}

Verdicts verdicts_for(const std::string& body, policy::Labels ns_annotations = {},
                      policy::Postures global = {}) {
  const auto parsed = policy::parse_policies(policy_text(body), "caps.yaml");
  EXPECT_TRUE(parsed.ok());
  policy::Workload w;
  w.name = "w";
  w.namespace_name = "ns";
  w.labels = {{"app", "x"}};
  const auto settings = policy::resolve_settings(global, ns_annotations, {}, nullptr);
  return compute_verdicts(*policy::compile(parsed.policies, w, settings));
}

TEST(CapVerdicts, BlockRuleBlocksOnlyItsCapability) {
  const auto v = verdicts_for("  capabilities:\n    matchCapabilities:\n"
                              "    - capability: chown\n  action: Block\n");
  EXPECT_EQ(v.actions[kChown], Action::Block);
  EXPECT_EQ(v.actions[kFowner], Action::None);
  EXPECT_EQ(v.actions[kSysAdmin], Action::None);
  EXPECT_EQ(v.sourced, 0u);
  EXPECT_TRUE(v.by_source.empty());
}

TEST(CapVerdicts, AuditRuleReports) {
  const auto v = verdicts_for("  capabilities:\n    matchCapabilities:\n"
                              "    - capability: CAP_NET_RAW\n  action: Audit\n");
  EXPECT_EQ(v.actions[kNetRaw], Action::Report);
  EXPECT_EQ(v.actions[kChown], Action::None);
}

TEST(CapVerdicts, AllowListFallsToThePosture) {
  const std::string allow = "  capabilities:\n    matchCapabilities:\n"
                            "    - capability: chown\n  action: Allow\n";
  const auto block = verdicts_for(allow, {{"kubearmor-capabilities-posture", "block"}});
  EXPECT_EQ(block.actions[kChown], Action::None);
  EXPECT_EQ(block.actions[kFowner], Action::Block);
  EXPECT_EQ(block.actions[kSysAdmin], Action::Block);
  const auto audit = verdicts_for(allow);
  EXPECT_EQ(audit.actions[kChown], Action::None);
  EXPECT_EQ(audit.actions[kFowner], Action::Report);
  // The file posture is another group: it does not make capabilities block.
  const auto file_block = verdicts_for(allow, {{"kubearmor-file-posture", "block"}});
  EXPECT_EQ(file_block.actions[kFowner], Action::Report);
}

TEST(CapVerdicts, DryRunReportsInsteadOfBlocking) {
  const auto v = verdicts_for("  capabilities:\n    matchCapabilities:\n"
                              "    - capability: chown\n  action: Block\n",
                              {{"kubearmor-policy", "audited"}});
  EXPECT_EQ(v.actions[kChown], Action::Report);
}

TEST(CapVerdicts, FromSourceGivesPerProgramVerdicts) {
  const auto v = verdicts_for("  capabilities:\n    matchCapabilities:\n"
                              "    - capability: chown\n      fromSource:\n"
                              "      - path: /usr/bin/chown\n  action: Allow\n",
                              {{"kubearmor-capabilities-posture", "block"}});
  EXPECT_EQ(v.actions[kChown], Action::Block); // any other program
  EXPECT_EQ(v.sourced, uint64_t{1} << kChown);
  ASSERT_FALSE(v.by_source.empty());
  for (const auto& s : v.by_source) {
    EXPECT_EQ(s.cap, kChown);
    EXPECT_EQ(s.action, Action::None) << s.path;
  }
  EXPECT_EQ(v.by_source.front().path, "/usr/bin/chown");
}

TEST(CapVerdicts, NoCapabilityRulesNoVerdicts) {
  const auto v = verdicts_for("  process:\n    matchPaths:\n    - path: /usr/bin/id\n"
                              "  action: Block\n",
                              {{"kubearmor-capabilities-posture", "block"}});
  for (const auto a : v.actions) EXPECT_EQ(a, Action::None);
}

} // namespace
} // namespace corral::enforce::capabilities
