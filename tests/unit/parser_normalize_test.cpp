// Normalisation (POLICY.md "Spec"): action case, defaults, inheritance rule -> section ->
// spec, comma lists and CAP_ prefixes, and multi-document files.
#include <gtest/gtest.h>

#include "policy/parser.h"
#include "test_util.h"

namespace corral::policy {
namespace {

using testing::dump;
using testing::parse;
using testing::policy_with;
using testing::yaml;
using Strings = std::vector<std::string>;

std::vector<std::string> values(const ParseResult& r) {
  std::vector<std::string> out;
  for (const auto& rule : r.policies.at(0)->rules) out.push_back(rule.value);
  return out;
}

TEST(ParserNormalize, ActionIsCaseInsensitive) {
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path: /a
      action: allow
    - path: /b
      action: AUDIT
    - path: /c
      action: bLoCk
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& rules = r.policies[0]->rules;
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].action, Action::Allow);
  EXPECT_EQ(rules[1].action, Action::Audit);
  EXPECT_EQ(rules[2].action, Action::Block);
}

TEST(ParserNormalize, DefaultsAreBlockAndSeverityOne) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - path: /etc/shadow
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const Rule& rule = r.policies[0]->rules.at(0);
  EXPECT_EQ(rule.action, Action::Block);
  EXPECT_EQ(rule.severity, 1);
  EXPECT_TRUE(rule.tags.empty());
  EXPECT_EQ(rule.message, "");
  EXPECT_FALSE(rule.owner_only);
  EXPECT_FALSE(rule.read_only);
  EXPECT_FALSE(rule.recursive);
}

TEST(ParserNormalize, RuleInheritsFromSectionThenSpec) {
  const auto r = parse(policy_with(R"(
  severity: 2
  tags: [spec]
  message: from spec
  action: Audit
  process:
    severity: 3
    tags: [section]
    matchPaths:
    - path: /only-spec-and-section
    - path: /own-everything
      severity: 4
      tags: [rule]
      message: from rule
      action: Allow
  file:
    action: Allow
    message: from file section
    matchPaths:
    - path: /file
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& rules = r.policies[0]->rules;
  ASSERT_EQ(rules.size(), 3u);

  // Each field is inherited on its own: severity and tags from the section, message and
  // action from the spec.
  EXPECT_EQ(rules[0].severity, 3);
  EXPECT_EQ(rules[0].tags, (Strings{"section"}));
  EXPECT_EQ(rules[0].message, "from spec");
  EXPECT_EQ(rules[0].action, Action::Audit);

  EXPECT_EQ(rules[1].severity, 4);
  EXPECT_EQ(rules[1].tags, (Strings{"rule"}));
  EXPECT_EQ(rules[1].message, "from rule");
  EXPECT_EQ(rules[1].action, Action::Allow);

  // A section's settings do not leak into another section.
  EXPECT_EQ(rules[2].severity, 2);
  EXPECT_EQ(rules[2].tags, (Strings{"spec"}));
  EXPECT_EQ(rules[2].message, "from file section");
  EXPECT_EQ(rules[2].action, Action::Allow);
}

TEST(ParserNormalize, SeverityAcceptsTheWholeRange) {
  for (int s = 1; s <= 10; ++s) {
    const auto r = parse(policy_with("  severity: " + std::to_string(s) +
                                     "\n  process:\n    matchPaths:\n    - path: /a\n"));
    ASSERT_TRUE(r.ok()) << s << "\n" << dump(r);
    EXPECT_EQ(r.policies[0]->rules[0].severity, s);
  }
}

TEST(ParserNormalize, ProtocolCommaListsBecomeOneRuleEach) {
  const auto r = parse(policy_with(R"(
  network:
    matchProtocols:
    - protocol: tcp,udp
    - protocol: " ICMP , icmpv6,Raw,sctp "
      action: Allow
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(values(r), (Strings{"tcp", "udp", "icmp", "icmpv6", "raw", "sctp"}));
  const auto& rules = r.policies[0]->rules;
  // The copies of one entry share its origin and settings.
  EXPECT_EQ(rules[0].origin.field, "spec.network.matchProtocols[0]");
  EXPECT_EQ(rules[1].origin.field, "spec.network.matchProtocols[0]");
  EXPECT_EQ(rules[1].origin.line, 11);
  EXPECT_EQ(rules[5].action, Action::Allow);
  EXPECT_EQ(rules[5].origin.field, "spec.network.matchProtocols[1]");
}

TEST(ParserNormalize, CapabilityNamesDropCapPrefixAndCase) {
  const auto r = parse(policy_with(R"(
  capabilities:
    matchCapabilities:
    - capability: CAP_NET_RAW
    - capability: cap_sys_admin, SYS_PTRACE,net_bind_service
    - capability: Checkpoint_Restore
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(values(r), (Strings{"net_raw", "sys_admin", "sys_ptrace", "net_bind_service",
                                "checkpoint_restore"}));
}

TEST(ParserNormalize, BooleansAreCaseInsensitive) {
  const auto r = parse(policy_with(R"(
  file:
    matchDirectories:
    - dir: /a/
      recursive: True
      readOnly: TRUE
      ownerOnly: False
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const Rule& rule = r.policies[0]->rules.at(0);
  EXPECT_TRUE(rule.recursive);
  EXPECT_TRUE(rule.read_only);
  EXPECT_FALSE(rule.owner_only);
}

TEST(ParserNormalize, RootDirectoryIsADirectory) {
  const auto r = parse(policy_with("  file:\n    matchDirectories:\n    - dir: /\n"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(values(r), (Strings{"/"}));
}

const std::string kDoc = yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: NAME
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
)");

std::string doc(const std::string& name) {
  std::string d = kDoc;
  d.replace(d.find("NAME"), 4, name);
  return d;
}

TEST(ParserNormalize, MultiDocumentFile) {
  const auto r = parse(doc("one") + "---\n" + doc("two") + "---\n" + doc("three"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.policies.size(), 3u);
  EXPECT_EQ(r.policies[0]->name, "one");
  EXPECT_EQ(r.policies[1]->name, "two");
  EXPECT_EQ(r.policies[2]->name, "three");
  // Lines count from the start of the file, not of the document.
  EXPECT_EQ(r.policies[0]->origin.line, 1);
  EXPECT_EQ(r.policies[1]->origin.line, 12);
  EXPECT_EQ(r.policies[2]->origin.line, 23);
  EXPECT_EQ(r.policies[2]->rules[0].origin.line, 32);
}

TEST(ParserNormalize, EmptyDocumentsAreSkipped) {
  const auto r = parse("---\n# leading comment\n---\n" + doc("a") + "---\n---\n~\n---\n" +
                       doc("b") + "---\n# trailing\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  ASSERT_EQ(r.policies.size(), 2u);
  EXPECT_EQ(r.policies[0]->name, "a");
  EXPECT_EQ(r.policies[1]->name, "b");
}

TEST(ParserNormalize, ExplicitDocumentEndMarkers) {
  const auto r = parse("---\n" + doc("a") + "...\n---\n" + doc("b") + "...\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.policies.size(), 2u);
}

TEST(ParserNormalize, ByteOrderMarkAndCrLfLineEndings) {
  std::string text = "\xEF\xBB\xBF";
  for (const char c : doc("crlf")) {
    if (c == '\n') text += '\r';
    text += c;
  }
  const auto r = parse(text);
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.policies.size(), 1u);
  EXPECT_EQ(r.policies[0]->origin.line, 1);
  EXPECT_EQ(r.policies[0]->origin.column, 1);
  EXPECT_EQ(r.policies[0]->rules[0].origin.line, 10);
  EXPECT_EQ(r.policies[0]->rules[0].origin.column, 7);
  EXPECT_EQ(r.policies[0]->rules[0].value, "/bin/sh");
}

TEST(ParserNormalize, AnchorsAndAliasesAreExpanded) {
  const auto r = parse(policy_with(R"(
  tags: &common [pci, audit]
  process:
    matchPaths:
    - &rule {path: /bin/sh}
    - *rule
    - path: /bin/bash
      tags: *common
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(values(r), (Strings{"/bin/sh", "/bin/sh", "/bin/bash"}));
  EXPECT_EQ(r.policies[0]->rules[2].tags, (Strings{"pci", "audit"}));
}

} // namespace
} // namespace corral::policy
