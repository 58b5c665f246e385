// selects() (policy/selector.h): which policies apply to a workload (POLICY.md "Kinds").
#include <gtest/gtest.h>

#include "policy/selector.h"

namespace corral::policy {
namespace {

Policy policy(Kind kind, std::string ns, Labels labels, std::vector<Expression> exprs = {}) {
  Policy p;
  p.kind = kind;
  p.name = "p";
  p.namespace_name = std::move(ns);
  p.selector.match_labels = std::move(labels);
  p.selector.match_expressions = std::move(exprs);
  return p;
}

Workload workload(std::string ns, Labels labels) {
  Workload w;
  w.name = "w";
  w.namespace_name = std::move(ns);
  w.labels = std::move(labels);
  return w;
}

Workload host(Labels node_labels) {
  Workload w;
  w.host = true;
  w.node_labels = std::move(node_labels);
  return w;
}

TEST(Selector, PolicyNeedsItsNamespace) {
  const Policy p = policy(Kind::Policy, "shop", {{"app", "nginx"}});
  EXPECT_TRUE(selects(p, workload("shop", {{"app", "nginx"}})));
  EXPECT_FALSE(selects(p, workload("default", {{"app", "nginx"}})));
}

TEST(Selector, AllMatchLabelsMustBeEqual) {
  const Policy p = policy(Kind::Policy, "default", {{"app", "nginx"}, {"tier", "web"}});
  EXPECT_TRUE(selects(p, workload("default", {{"app", "nginx"}, {"tier", "web"}, {"x", "y"}})));
  EXPECT_FALSE(selects(p, workload("default", {{"app", "nginx"}})));
  EXPECT_FALSE(selects(p, workload("default", {{"app", "nginx"}, {"tier", "db"}})));
  EXPECT_FALSE(selects(p, workload("default", {})));
}

TEST(Selector, EmptyMatchLabelsSelectsTheWholeNamespace) {
  const Policy p = policy(Kind::Policy, "default", {});
  EXPECT_TRUE(selects(p, workload("default", {})));
  EXPECT_TRUE(selects(p, workload("default", {{"app", "anything"}})));
  EXPECT_FALSE(selects(p, workload("other", {})));
}

TEST(Selector, LabelExpressions) {
  const Policy in =
      policy(Kind::Policy, "default", {}, {{"label", true, {"env=prod", "env=stage"}}});
  EXPECT_TRUE(selects(in, workload("default", {{"env", "prod"}})));
  EXPECT_TRUE(selects(in, workload("default", {{"env", "stage"}})));
  EXPECT_FALSE(selects(in, workload("default", {{"env", "dev"}})));
  EXPECT_FALSE(selects(in, workload("default", {})));

  const Policy not_in = policy(Kind::Policy, "default", {}, {{"label", false, {"debug=true"}}});
  EXPECT_TRUE(selects(not_in, workload("default", {})));
  EXPECT_TRUE(selects(not_in, workload("default", {{"debug", "false"}})));
  EXPECT_FALSE(selects(not_in, workload("default", {{"debug", "true"}})));
}

TEST(Selector, LabelsAndExpressionsMustAllHold) {
  const Policy p =
      policy(Kind::Policy, "default", {{"app", "nginx"}}, {{"label", false, {"env=prod"}}});
  EXPECT_TRUE(selects(p, workload("default", {{"app", "nginx"}, {"env", "dev"}})));
  EXPECT_FALSE(selects(p, workload("default", {{"app", "nginx"}, {"env", "prod"}})));
  EXPECT_FALSE(selects(p, workload("default", {{"env", "dev"}})));
}

TEST(Selector, ClusterPolicyByNamespace) {
  const Policy p = policy(Kind::ClusterPolicy, "", {}, {{"namespace", false, {"kube-system"}}});
  EXPECT_TRUE(selects(p, workload("default", {})));
  EXPECT_TRUE(selects(p, workload("shop", {{"app", "x"}})));
  EXPECT_FALSE(selects(p, workload("kube-system", {})));

  const Policy only = policy(Kind::ClusterPolicy, "", {}, {{"namespace", true, {"a", "b"}}});
  EXPECT_TRUE(selects(only, workload("a", {})));
  EXPECT_TRUE(selects(only, workload("b", {})));
  EXPECT_FALSE(selects(only, workload("c", {})));
}

TEST(Selector, ClusterPolicyByLabel) {
  const Policy p = policy(Kind::ClusterPolicy, "", {}, {{"label", true, {"app=nginx"}}});
  EXPECT_TRUE(selects(p, workload("a", {{"app", "nginx"}})));
  EXPECT_TRUE(selects(p, workload("b", {{"app", "nginx"}})));
  EXPECT_FALSE(selects(p, workload("a", {{"app", "redis"}})));
}

TEST(Selector, ClusterPolicyWithoutSelectorsSelectsEveryContainer) {
  const Policy p = policy(Kind::ClusterPolicy, "", {});
  EXPECT_TRUE(selects(p, workload("any", {})));
  EXPECT_FALSE(selects(p, host({})));
}

TEST(Selector, HostPolicySelectsOnlyTheHost) {
  const Policy p = policy(Kind::HostPolicy, "", {{"kubernetes.io/hostname", "node-1"}});
  EXPECT_TRUE(selects(p, host({{"kubernetes.io/hostname", "node-1"}, {"zone", "a"}})));
  EXPECT_FALSE(selects(p, host({{"kubernetes.io/hostname", "node-2"}})));
  EXPECT_FALSE(selects(p, host({})));
  Workload container = workload("default", {{"kubernetes.io/hostname", "node-1"}});
  EXPECT_FALSE(selects(p, container));
}

TEST(Selector, HostnameStarSelectsEveryNode) {
  const Policy p = policy(Kind::HostPolicy, "", {{"kubearmor.io/hostname", "*"}});
  EXPECT_TRUE(selects(p, host({})));
  EXPECT_TRUE(selects(p, host({{"kubernetes.io/hostname", "node-9"}})));
  EXPECT_FALSE(selects(p, workload("default", {})));
}

TEST(Selector, ContainerPoliciesNeverSelectTheHost) {
  EXPECT_FALSE(selects(policy(Kind::Policy, "default", {}), host({})));
  Workload h = host({});
  h.namespace_name = "default";
  EXPECT_FALSE(selects(policy(Kind::Policy, "default", {}), h));
}

} // namespace
} // namespace corral::policy

namespace corral::policy {
namespace {

TEST(Settings, TheImageOnlyRuleIsOnUnlessANamespaceOrPodTurnsItOff) {
  std::vector<std::string> warnings;
  EXPECT_TRUE(resolve_settings({}, {}, {}, &warnings).image_only);
  EXPECT_FALSE(resolve_settings({}, {{kImageOnlyAnnotation, "false"}}, {}, &warnings).image_only);
  EXPECT_FALSE(resolve_settings({}, {}, {{kImageOnlyAnnotation, "False"}}, &warnings).image_only);
  EXPECT_TRUE(warnings.empty());
  EXPECT_TRUE(resolve_settings({}, {{kImageOnlyAnnotation, "nope"}}, {}, &warnings).image_only);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("corral.io/exec-image-only=nope"), std::string::npos) << warnings[0];
}

} // namespace
} // namespace corral::policy
