// Unit tests of a change's description (agent/policy_change.h): what it permits or forbids,
// whether it widens what a workload may run, and who made it in Kubernetes mode.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/kube_source.h"
#include "agent/policy_change.h"
#include "policy/parser.h"

namespace corral::agent {
namespace {

policy::PolicyPtr parse(const std::string& rules, bool locked = false) {
  const std::string text =
      "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\n"
      "metadata:\n  name: p\n" +
      std::string(locked ? "  annotations:\n    corral.dev/lock: \"true\"\n" : "") +
      "spec:\n  selector:\n    matchLabels:\n      app: a\n" + rules;
  auto parsed = policy::parse_policies(text, "p.yaml");
  EXPECT_TRUE(parsed.ok()) << (parsed.diagnostics.empty() ? "" : parsed.diagnostics[0].to_string());
  return parsed.policies.at(0);
}

const char* kAllowBash = "  process:\n    matchPaths:\n    - path: /bin/bash\n  action: Allow\n";
const char* kAllowBashChroot = "  process:\n    matchPaths:\n    - path: /bin/bash\n"
                               "    - path: /usr/sbin/chroot\n  action: Allow\n";

TEST(PolicyChange, SaysWhatItPermitsAndNoLongerPermits) {
  const auto before = parse(kAllowBash), after = parse(kAllowBashChroot);
  const auto c = describe_policy_change(before.get(), after.get());
  EXPECT_EQ(c.action, "Modified");
  EXPECT_EQ(c.object(), "KubeArmorPolicy/default/p");
  EXPECT_EQ(c.summary, "permits: Allow process path /usr/sbin/chroot");
  const auto back = describe_policy_change(after.get(), before.get());
  EXPECT_EQ(back.summary, "no longer permits: Allow process path /usr/sbin/chroot");
  EXPECT_EQ(describe_policy_change(nullptr, after.get()).action, "Added");
  EXPECT_EQ(describe_policy_change(after.get(), nullptr).action, "Deleted");
}

TEST(PolicyChange, ALockedPolicyChangedOrDeletedIsSeverityTen) {
  const auto locked = parse(kAllowBash, true), unlocked = parse(kAllowBash);
  auto lifted = describe_policy_change(locked.get(), unlocked.get());
  EXPECT_EQ(lifted.severity(), 10);
  EXPECT_NE(lifted.summary.find("LOCK LIFTED"), std::string::npos) << lifted.summary;
  EXPECT_EQ(describe_policy_change(locked.get(), nullptr).severity(), 10);
  EXPECT_EQ(describe_policy_change(nullptr, locked.get()).severity(), 5);
  EXPECT_EQ(describe_policy_change(unlocked.get(), nullptr).severity(), 5);
}

TEST(PolicyChange, WidensWhenADeniedProgramOrTheUnnamedOnesMayRun) {
  policy::Workload w;
  w.namespace_name = "default";
  w.labels = {{"app", "a"}};
  policy::Settings block;
  block.postures.file = policy::Posture::Block;
  const auto bash = parse(kAllowBash), both = parse(kAllowBashChroot);
  const auto narrow = policy::compile({bash}, w, block), wide = policy::compile({both}, w, block);
  EXPECT_TRUE(widens_exec(narrow.get(), wide.get()));
  EXPECT_FALSE(widens_exec(wide.get(), narrow.get()));
  // The allow-list lifted: everything unnamed may run.
  const auto none = policy::compile({}, w, block);
  EXPECT_TRUE(widens_exec(narrow.get(), none.get()));
  // A posture from block to audit.
  const auto audit = policy::compile({bash}, w, policy::Settings{});
  EXPECT_TRUE(widens_exec(narrow.get(), audit.get()));
  EXPECT_FALSE(widens_exec(audit.get(), narrow.get()));
  // A lock lifted: the other policy's chroot may run.
  const auto locked = parse(kAllowBash, true);
  const auto was = policy::compile({locked, both}, w, block);
  const auto now = policy::compile({bash, both}, w, block);
  EXPECT_TRUE(widens_exec(was.get(), now.get()));
}

TEST(PolicyChange, NamespaceAnnotations) {
  const auto c = describe_namespace_change("ns", {{"kubearmor-file-posture", "block"}},
                                           {{"kubearmor-file-posture", "audit"}});
  EXPECT_EQ(c.object(), "Namespace//ns");
  EXPECT_EQ(c.action, "Modified");
  EXPECT_EQ(c.summary, "annotations set: kubearmor-file-posture=audit");
  EXPECT_EQ(describe_namespace_change("ns", {}, {{"k", "v"}}).action, "Added");
  EXPECT_EQ(describe_namespace_change("ns", {{"k", "v"}}, {}).action, "Deleted");
}

TEST(PolicyChange, AlertFields) {
  auto c = describe_policy_change(nullptr, parse(kAllowBash).get());
  c.source = "local uid 0 (corral apply)";
  c.digest = std::string(64, 'a');
  const auto a = change_alert(c, {"cl", "node-1", 7});
  EXPECT_EQ(a.type, "PolicyChange");
  EXPECT_EQ(a.policy_name, "corral-policy-change");
  EXPECT_EQ(a.operation, "Policy");
  EXPECT_EQ(a.resource, "KubeArmorPolicy/default/p");
  EXPECT_EQ(a.action, "Added");
  EXPECT_EQ(a.source, "local uid 0 (corral apply)");
  EXPECT_EQ(a.severity, "5");
  EXPECT_EQ(a.data, "sha256=" + std::string(64, 'a') + " history=7");
  EXPECT_TRUE(a.is_alert());
}

TEST(KubeManager, TheNewestManagedFieldsEntry) {
  const auto o = nlohmann::json::parse(R"({"metadata": {"managedFields": [
    {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-11-30T10:00:00Z"},
    {"manager": "helm", "operation": "Update", "time": "2026-11-30T11:00:00Z"},
    {"manager": "old", "operation": "Apply", "time": "2026-11-29T10:00:00Z"}]}})");
  EXPECT_EQ(KubeSource::manager_of(o), "helm (Update)");
  EXPECT_EQ(KubeSource::manager_of(nlohmann::json::parse(R"({"metadata": {}})")),
            "unknown (no managedFields)");
}

} // namespace
} // namespace corral::agent
