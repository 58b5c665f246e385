// Every field of POLICY.md's spec, for the three kinds, lands in the model.
#include <gtest/gtest.h>

#include "policy/parser.h"
#include "test_util.h"

namespace corral::policy {
namespace {

using testing::dump;
using testing::parse;
using testing::yaml;
using Strings = std::vector<std::string>;

const std::string kEveryField = yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: every-field
  namespace: shop
  labels: {team: a}
  annotations: {note: b}
spec:
  selector:
    matchLabels:
      app: nginx
      tier: web
    matchExpressions:
    - key: label
      operator: In
      values: [env=prod, env=stage]
    - key: label
      operator: NotIn
      values: [debug=true]
  severity: 5
  tags: [spec-tag]
  message: spec message
  action: Allow
  process:
    matchPaths:
    - path: /usr/sbin/nginx
      ownerOnly: true
      fromSource:
      - path: /bin/bash
      severity: 7
      tags: [rule-tag]
      message: rule message
      action: Block
    - execname: nginx
    matchDirectories:
    - dir: /usr/bin/
      recursive: true
      ownerOnly: false
      fromSource:
      - path: /bin/sh
    matchPatterns:
    - pattern: /tmp/*.sh
      ownerOnly: true
  file:
    matchPaths:
    - path: /etc/passwd
      readOnly: true
      ownerOnly: true
      fromSource:
      - path: /usr/bin/cat
    matchDirectories:
    - dir: /var/log/
      recursive: false
      readOnly: true
      ownerOnly: false
      fromSource:
      - path: /usr/bin/tail
    matchPatterns:
    - pattern: /home/**/.ssh/*
      readOnly: true
      ownerOnly: true
  network:
    matchProtocols:
    - protocol: tcp
      fromSource:
      - path: /usr/bin/curl
  capabilities:
    matchCapabilities:
    - capability: net_raw
      fromSource:
      - path: /usr/bin/ping
)");

TEST(ParserFields, KubeArmorPolicyEveryField) {
  const auto r = parse(kEveryField);
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  ASSERT_EQ(r.policies.size(), 1u);
  const Policy& p = *r.policies[0];
  EXPECT_EQ(p.kind, Kind::Policy);
  EXPECT_EQ(p.name, "every-field");
  EXPECT_EQ(p.namespace_name, "shop");
  EXPECT_EQ(p.key(), "KubeArmorPolicy/shop/every-field");
  EXPECT_EQ(p.origin.file, "p.yaml");
  EXPECT_EQ(p.origin.line, 1);
  EXPECT_EQ(p.origin.column, 1);
  EXPECT_EQ(p.selector.match_labels, (Labels{{"app", "nginx"}, {"tier", "web"}}));
  ASSERT_EQ(p.selector.match_expressions.size(), 2u);
  EXPECT_EQ(p.selector.match_expressions[0].key, "label");
  EXPECT_TRUE(p.selector.match_expressions[0].in);
  EXPECT_EQ(p.selector.match_expressions[0].values, (Strings{"env=prod", "env=stage"}));
  EXPECT_FALSE(p.selector.match_expressions[1].in);
  EXPECT_EQ(p.selector.match_expressions[1].values, (Strings{"debug=true"}));
  ASSERT_EQ(p.rules.size(), 9u);
}

TEST(ParserFields, ProcessRules) {
  const auto r = parse(kEveryField);
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& rules = r.policies[0]->rules;

  const Rule& path = rules[0];
  EXPECT_EQ(path.category, Category::Process);
  EXPECT_EQ(path.target, Target::Path);
  EXPECT_EQ(path.value, "/usr/sbin/nginx");
  EXPECT_TRUE(path.owner_only);
  EXPECT_FALSE(path.read_only);
  EXPECT_EQ(path.from_source, (Strings{"/bin/bash"}));
  EXPECT_EQ(path.severity, 7);
  EXPECT_EQ(path.tags, (Strings{"rule-tag"}));
  EXPECT_EQ(path.message, "rule message");
  EXPECT_EQ(path.action, Action::Block);
  EXPECT_EQ(path.origin.field, "spec.process.matchPaths[0]");
  EXPECT_EQ(path.origin.file, "p.yaml");
  EXPECT_EQ(path.origin.line, 26);
  EXPECT_EQ(path.origin.column, 7);

  const Rule& exec = rules[1];
  EXPECT_EQ(exec.target, Target::ExecName);
  EXPECT_EQ(exec.value, "nginx");
  EXPECT_FALSE(exec.owner_only);
  EXPECT_TRUE(exec.from_source.empty());
  // Everything else comes from the spec.
  EXPECT_EQ(exec.severity, 5);
  EXPECT_EQ(exec.tags, (Strings{"spec-tag"}));
  EXPECT_EQ(exec.message, "spec message");
  EXPECT_EQ(exec.action, Action::Allow);
  EXPECT_EQ(exec.origin.field, "spec.process.matchPaths[1]");
  EXPECT_EQ(exec.origin.line, 34);

  const Rule& dir = rules[2];
  EXPECT_EQ(dir.target, Target::Dir);
  EXPECT_EQ(dir.value, "/usr/bin/");
  EXPECT_TRUE(dir.recursive);
  EXPECT_FALSE(dir.owner_only);
  EXPECT_EQ(dir.from_source, (Strings{"/bin/sh"}));
  EXPECT_EQ(dir.origin.field, "spec.process.matchDirectories[0]");

  const Rule& pattern = rules[3];
  EXPECT_EQ(pattern.target, Target::Pattern);
  EXPECT_EQ(pattern.value, "/tmp/*.sh");
  EXPECT_TRUE(pattern.owner_only);
  EXPECT_EQ(pattern.origin.field, "spec.process.matchPatterns[0]");
}

TEST(ParserFields, FileRules) {
  const auto r = parse(kEveryField);
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& rules = r.policies[0]->rules;

  const Rule& path = rules[4];
  EXPECT_EQ(path.category, Category::File);
  EXPECT_EQ(path.target, Target::Path);
  EXPECT_EQ(path.value, "/etc/passwd");
  EXPECT_TRUE(path.read_only);
  EXPECT_TRUE(path.owner_only);
  EXPECT_EQ(path.from_source, (Strings{"/usr/bin/cat"}));
  EXPECT_EQ(path.origin.field, "spec.file.matchPaths[0]");

  const Rule& dir = rules[5];
  EXPECT_EQ(dir.target, Target::Dir);
  EXPECT_EQ(dir.value, "/var/log/");
  EXPECT_FALSE(dir.recursive);
  EXPECT_TRUE(dir.read_only);
  EXPECT_FALSE(dir.owner_only);
  EXPECT_EQ(dir.from_source, (Strings{"/usr/bin/tail"}));

  const Rule& pattern = rules[6];
  EXPECT_EQ(pattern.target, Target::Pattern);
  EXPECT_EQ(pattern.value, "/home/**/.ssh/*");
  EXPECT_TRUE(pattern.read_only);
  EXPECT_TRUE(pattern.owner_only);
  EXPECT_EQ(pattern.action, Action::Allow);
}

TEST(ParserFields, NetworkAndCapabilityRules) {
  const auto r = parse(kEveryField);
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& rules = r.policies[0]->rules;

  const Rule& proto = rules[7];
  EXPECT_EQ(proto.category, Category::Network);
  EXPECT_EQ(proto.target, Target::Protocol);
  EXPECT_EQ(proto.value, "tcp");
  EXPECT_EQ(proto.from_source, (Strings{"/usr/bin/curl"}));
  EXPECT_EQ(proto.origin.field, "spec.network.matchProtocols[0]");

  const Rule& cap = rules[8];
  EXPECT_EQ(cap.category, Category::Capabilities);
  EXPECT_EQ(cap.target, Target::Capability);
  EXPECT_EQ(cap.value, "net_raw");
  EXPECT_EQ(cap.from_source, (Strings{"/usr/bin/ping"}));
  EXPECT_EQ(cap.origin.field, "spec.capabilities.matchCapabilities[0]");
  EXPECT_EQ(cap.severity, 5);
}

TEST(ParserFields, ClusterPolicy) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata:
  name: cluster-wide
spec:
  selector:
    matchExpressions:
    - key: namespace
      operator: NotIn
      values: [kube-system]
    - key: label
      operator: In
      values: [app=nginx]
  file:
    matchPaths:
    - path: /etc/shadow
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.policies.size(), 1u);
  const Policy& p = *r.policies[0];
  EXPECT_EQ(p.kind, Kind::ClusterPolicy);
  EXPECT_EQ(p.namespace_name, "");
  EXPECT_EQ(p.key(), "KubeArmorClusterPolicy/cluster-wide");
  ASSERT_EQ(p.selector.match_expressions.size(), 2u);
  EXPECT_EQ(p.selector.match_expressions[0].key, "namespace");
  EXPECT_FALSE(p.selector.match_expressions[0].in);
  EXPECT_EQ(p.selector.match_expressions[0].values, (Strings{"kube-system"}));
  EXPECT_EQ(p.selector.match_expressions[1].key, "label");
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].action, Action::Block);
}

TEST(ParserFields, ClusterPolicyNamespaceIsIgnoredWithWarning) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata:
  name: c
  namespace: shop
spec:
  selector:
    matchExpressions: []
  process:
    matchPaths:
    - path: /bin/sh
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  const Diagnostic& d = r.diagnostics[0];
  EXPECT_EQ(d.level, Diagnostic::Level::Warning);
  EXPECT_EQ(d.field, "metadata.namespace");
  EXPECT_EQ(d.line, 5);
  EXPECT_EQ(d.column, 14);
  EXPECT_EQ(r.policies[0]->namespace_name, "");
}

TEST(ParserFields, HostPolicy) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: host-guard
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: node-1
  severity: 9
  network:
    matchProtocols:
    - protocol: raw
      fromSource:
      - path: /usr/bin/ping
  capabilities:
    matchCapabilities:
    - capability: sys_admin
      fromSource:
      - path: /usr/sbin/mount
  process:
    matchPaths:
    - path: /usr/bin/sudo
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.policies.size(), 1u);
  const Policy& p = *r.policies[0];
  EXPECT_EQ(p.kind, Kind::HostPolicy);
  EXPECT_EQ(p.namespace_name, "");
  EXPECT_EQ(p.key(), "KubeArmorHostPolicy/host-guard");
  EXPECT_EQ(p.selector.match_labels, (Labels{{"kubernetes.io/hostname", "node-1"}}));
  ASSERT_EQ(p.rules.size(), 3u);
  // Sections are read in the order process, file, network, capabilities.
  EXPECT_EQ(p.rules[0].category, Category::Process);
  EXPECT_TRUE(p.rules[0].from_source.empty()); // optional outside network/capabilities
  EXPECT_EQ(p.rules[1].value, "raw");
  EXPECT_EQ(p.rules[2].value, "sys_admin");
  for (const auto& rule : p.rules) EXPECT_EQ(rule.severity, 9);
}

TEST(ParserFields, NamespaceDefaultsToDefault) {
  const auto r = parse(testing::policy_with(R"(
  process:
    matchPaths:
    - path: /bin/sh
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->namespace_name, "default");
  EXPECT_EQ(r.policies[0]->key(), "KubeArmorPolicy/default/test");
}

TEST(ParserFields, EmptyMatchLabelsSelectsEverything) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: all
spec:
  selector:
    matchLabels:
  process:
    matchPaths:
    - path: /bin/sh
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.policies[0]->selector.match_labels.empty());
  EXPECT_TRUE(r.policies[0]->selector.match_expressions.empty());
}

TEST(ParserFields, StatusAndKubernetesMetadataAreAccepted) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: from-kubectl
  uid: 1234
  generation: 2
  resourceVersion: "77"
  creationTimestamp: "2024-01-01T00:00:00Z"
  managedFields: []
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
status:
  PolicyStatus: OK
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
}

TEST(ParserFields, FlowStyleIsTheSameAsBlockStyle) {
  const auto r = parse(
      "{apiVersion: security.kubearmor.com/v1, kind: KubeArmorPolicy, metadata: {name: f},"
      " spec: {selector: {matchLabels: {app: x}}, process: {matchPaths: [{path: /bin/sh}]}}}");
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.policies[0]->rules.size(), 1u);
  EXPECT_EQ(r.policies[0]->rules[0].value, "/bin/sh");
  EXPECT_EQ(r.policies[0]->rules[0].origin.line, 1);
}

TEST(ParserFields, LongPathWarnsButIsAccepted) {
  const std::string path = "/" + std::string(250, 'a');
  const auto r =
      parse(testing::policy_with("  file:\n    matchPaths:\n    - path: " + path + "\n"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].level, Diagnostic::Level::Warning);
  EXPECT_EQ(r.diagnostics[0].field, "spec.file.matchPaths[0].path");
  EXPECT_EQ(r.diagnostics[0].line, 11);
  EXPECT_EQ(r.diagnostics[0].column, 13);
  EXPECT_EQ(r.policies[0]->rules[0].value, path);
}

TEST(ParserFields, PtsFalseRestrictsTheRuleToTerminals) {
  const auto r = parse(
      testing::policy_with("  file:\n    matchPaths:\n    - path: /etc/hostname\n      pts: false\n"
                           "    - path: /etc/motd\n      pts: true\n"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  ASSERT_EQ(r.policies[0]->rules.size(), 2u);
  EXPECT_TRUE(r.policies[0]->rules[0].pts_only);
  EXPECT_FALSE(r.policies[0]->rules[1].pts_only);
}

TEST(ParserFields, AllowedArgsIsKeptAndWarnedAsNotEnforced) {
  const auto r =
      parse(testing::policy_with("  process:\n    matchPaths:\n    - path: /usr/bin/python3\n"
                                 "      allowedArgs: [-m, random]\n"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].level, Diagnostic::Level::Warning);
  EXPECT_EQ(r.diagnostics[0].field, "spec.process.matchPaths[0].allowedArgs");
  EXPECT_NE(r.diagnostics[0].reason.find("not enforced"), std::string::npos) << dump(r);
  EXPECT_EQ(r.policies[0]->rules[0].allowed_args, (Strings{"-m", "random"}));
}

TEST(ParserFields, ProtocolAllIsAccepted) {
  const auto r =
      parse(testing::policy_with("  network:\n    matchProtocols:\n    - protocol: ALL\n"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->rules[0].value, "all");
}

} // namespace
} // namespace corral::policy
