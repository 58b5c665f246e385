// Input that is not a policy at all, or is built to exhaust the parser: every case ends
// quickly with an error (or a bounded success), never a crash or a hang. ctest's timeout
// on each test turns a hang into a failure.
#include <random>

#include <gtest/gtest.h>

#include "policy/parser.h"
#include "test_util.h"

namespace corral::policy {
namespace {

using testing::dump;
using testing::has_error;
using testing::parse;
using testing::policy_with;
using testing::yaml;

constexpr std::string_view kUtf8Hint = "policies are UTF-8 text";

TEST(ParserHostile, RandomBinary) {
  std::mt19937 rng(42); // fixed seed: the same bytes on every run
  for (int round = 0; round < 200; ++round) {
    std::string bytes(1 + rng() % 512, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    const auto r = parse(bytes);
    EXPECT_FALSE(r.ok()) << "round " << round;
    EXPECT_TRUE(r.policies.empty());
    ASSERT_FALSE(r.diagnostics.empty());
    EXPECT_GE(r.diagnostics[0].line, 1) << dump(r);
  }
}

TEST(ParserHostile, NulBytes) {
  const auto r = parse(std::string("apiVersion: x\nkind: \0y\n", 23));
  EXPECT_TRUE(r.policies.empty());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(
      has_error(r, "", 2, 7, "not YAML text: control character U+0000 is not allowed", kUtf8Hint));
}

TEST(ParserHostile, ControlCharacters) {
  const auto r = parse("metadata:\n  name: \"é\x1b[31m\"\n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "", 2, 11, "control character U+001B"));
  EXPECT_TRUE(has_error(parse("a: \x7f\n"), "", 1, 4, "control character U+007F"));
  EXPECT_TRUE(has_error(parse("a: \xc2\x80\n"), "", 1, 4, "control character U+0080"));
  // Tab, CR, LF and NEL are allowed (YAML 1.2 c-printable).
  const auto allowed = parse("a:\tb\r\nc: \xc2\x85\n");
  for (const auto& d : allowed.diagnostics) {
    EXPECT_EQ(d.reason.find("not YAML text"), std::string::npos) << d.to_string();
  }
}

TEST(ParserHostile, InvalidUtf8) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"a: \xff\n", 4},             // never valid
      {"a: \xc3\n", 4},             // truncated sequence
      {"a: \xc0\xaf\n", 4},         // overlong '/'
      {"a: \xed\xa0\x80\n", 4},     // a UTF-16 surrogate
      {"a: \xf4\x90\x80\x80\n", 4}, // past U+10FFFF
      {"a: bc\xe9\n", 6},           // Latin-1, not UTF-8
  };
  for (const auto& [text, column] : cases) {
    const auto r = parse(text);
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
    EXPECT_TRUE(has_error(r, "", 1, column, "not YAML text: invalid UTF-8 byte", kUtf8Hint));
  }
}

TEST(ParserHostile, Utf16IsRejectedWithAHint) {
  std::string text = "\xff\xfe";
  for (const char c : std::string("apiVersion: x\n")) text += {c, '\0'};
  const auto r = parse(text);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "", 1, 1, "invalid UTF-8 byte 0xff", "save the file as UTF-8"));
}

TEST(ParserHostile, ValidUtf8IsAccepted) {
  const auto r = parse(policy_with(R"(
  message: "Zugriff verweigert — 拒绝访问 🚫"
  process:
    matchPaths:
    - path: /opt/café/bin/thé
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->rules[0].value, "/opt/café/bin/thé");
}

TEST(ParserHostile, DeepFlowNesting) {
  for (const char open : {'[', '{'}) {
    const auto r = parse(std::string(100000, open));
    EXPECT_TRUE(r.policies.empty());
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
    const Diagnostic& d = r.diagnostics[0];
    EXPECT_NE(d.reason.find("invalid YAML: nested too deeply"), std::string::npos) << dump(r);
    EXPECT_EQ(d.hint, "a policy needs a few levels; look for unclosed '[' or '{'");
    // The place is inside the brackets on line 1, not the end of the input.
    EXPECT_EQ(d.line, 1);
    EXPECT_GT(d.column, 100);
    EXPECT_LT(d.column, 1000);
  }
}

TEST(ParserHostile, DeepBlockNesting) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += std::string(static_cast<size_t>(i), ' ') + "- \n";
  const auto r = parse(text);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_NE(r.diagnostics[0].reason.find("nested too deeply"), std::string::npos);
  EXPECT_GT(r.diagnostics[0].line, 100);
  EXPECT_LT(r.diagnostics[0].line, 1000);
}

TEST(ParserHostile, NestingWithinTheLimitIsJustWrong) {
  const auto r = parse(policy_with("  tags: " + std::string(200, '[') + std::string(200, ']') +
                                   "\n  process:\n    matchPaths:\n    - path: /a\n"));
  EXPECT_TRUE(has_error(r, "spec.tags[0]", 9, 10, "expected a string, found a list"));
}

// `a: &a [x, x, ...]; b: &b [*a, *a, ...]; ...`: ten levels name 10^10 strings.
std::string laughs(std::string_view leaf) {
  std::string out = "    l0: &l0 [";
  for (int i = 0; i < 10; ++i) out += std::string(i ? "," : "") + std::string(leaf);
  out += "]\n";
  for (int level = 1; level < 10; ++level) {
    const std::string prev = "l" + std::to_string(level - 1);
    out += "    l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) out += std::string(i ? "," : "") + "*" + prev;
    out += "]\n";
  }
  return out;
}

std::string bomb_policy(std::string_view leaf, std::string_view use) {
  return yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: lol
  annotations:
)") + laughs(leaf) +
         yaml(R"(
spec:
  selector:
    matchLabels: {app: x}
)") + std::string(use);
}

TEST(ParserHostile, BillionLaughsInTags) {
  const auto r = parse(bomb_policy(
      "lol", "  tags: *l9\n  process:\n    matchPaths:\n    - path: /a\n      tags: *l9\n"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  // The alias is judged one level deep: a list of lists. Its items are *l8, whose mark is
  // l8's anchor (line 14).
  EXPECT_TRUE(has_error(r, "spec.tags[0]", 14, 9, "expected a string, found a list"));
  EXPECT_LE(r.diagnostics.size(), 200u);
}

TEST(ParserHostile, BillionLaughsInMatchPaths) {
  const auto r = parse(
      bomb_policy("{path: /a}", "  process:\n    matchPaths: *l9\n  file:\n    matchPaths: *l8\n"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  EXPECT_TRUE(
      has_error(r, "spec.process.matchPaths[0]", 14, 9, "expected a mapping, found a list"));
}

TEST(ParserHostile, BillionLaughsInNameAndFromSource) {
  const auto r = parse(
      bomb_policy("/bin/sh", "  file:\n    matchPaths:\n    - path: /a\n      fromSource: *l9\n") +
      "---\n" + bomb_policy("x", "  process:\n    matchPaths:\n    - path: /a\n"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].fromSource[0]", 14, 9,
                        "expected a mapping, found a list"));
}

TEST(ParserHostile, AliasesRepeatingOneRuleAreBounded) {
  // Valid, but 3 bytes of input per rule: the rules themselves stay within the budget.
  std::string list = "[";
  for (int i = 0; i < 20000; ++i) list += std::string(i ? "," : "") + "*r";
  const auto r =
      parse(policy_with("  process:\n    matchPaths:\n    - &r {path: /bin/sh}\n  file:\n"
                        "    matchPaths: " +
                        list + "]\n"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->rules.size(), 20001u);
}

TEST(ParserHostile, InheritedTagsTimesRulesAreBounded) {
  // No aliases: 20,000 spec-level tags inherited by 20,000 rules would be 4e8 strings
  // (gigabytes) from half a megabyte of YAML.
  std::string tags = "[";
  for (int i = 0; i < 20000; ++i) tags += std::string(i ? "," : "") + "t";
  std::string rules;
  for (int i = 0; i < 20000; ++i) rules += "    - path: /a\n";
  const auto r = parse(policy_with("  tags: " + tags + "]\n  process:\n    matchPaths:\n" + rules));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].reason, "document expands to too much data");
  EXPECT_GT(r.diagnostics[0].line, 12);
}

TEST(ParserHostile, InheritedMessageTimesRulesIsBounded) {
  std::string rules;
  for (int i = 0; i < 20000; ++i) rules += "    - path: /a\n";
  const auto r = parse(policy_with("  message: " + std::string(200000, 'm') +
                                   "\n  process:\n    matchPaths:\n" + rules));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "", r.diagnostics.at(0).line, 7, "document expands to too much data",
                        "aliases (*name)"));
}

TEST(ParserHostile, OrdinaryLargePolicyIsWithinBudget) {
  std::string rules;
  for (int i = 0; i < 5000; ++i) rules += "    - path: /usr/bin/tool" + std::to_string(i) + "\n";
  const auto r = parse(policy_with("  tags: [PCI_DSS, NIST_800-53_AC-6, MITRE]\n  message: a "
                                   "process outside the allow-list ran\n  process:\n    "
                                   "matchPaths:\n" +
                                   rules));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->rules.size(), 5000u);
}

TEST(ParserHostile, CyclicAliases) {
  // yaml-cpp lets an anchored collection contain an alias to itself.
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: &m
  name: *m
spec: &s
  selector: *s
  tags: &t [*t]
  process: *s
)"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  EXPECT_TRUE(has_error(r, "metadata.name", 3, 11, "expected a string, found a mapping"));
  EXPECT_TRUE(has_error(r, "spec.tags[0]", 7, 9, "expected a string, found a list"));
}

TEST(ParserHostile, LongValuesAreShortenedInDiagnostics) {
  const std::string value(100000, 'x');
  const auto r = parse(policy_with("  process:\n    matchPaths:\n    - path: " + value + "\n"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_LT(r.diagnostics[0].to_string().size(), 300u);
  EXPECT_NE(r.diagnostics[0].reason.find("'xxxxxxxx"), std::string::npos);
  EXPECT_NE(r.diagnostics[0].reason.find("...' is not an absolute path"), std::string::npos);
}

TEST(ParserHostile, LongUnknownKeysAreShortenedInFieldPaths) {
  // YAML limits implicit keys to 1024 characters.
  const std::string key(1000, 'k');
  const auto r =
      parse(policy_with("  " + key + ": 1\n  process:\n    matchPaths:\n    - path: /a\n"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_LT(r.diagnostics[0].field.size(), 100u);
  EXPECT_EQ(r.diagnostics[0].field.rfind("spec.'kkk", 0), 0u) << r.diagnostics[0].field;
}

TEST(ParserHostile, EscapedControlCharactersAreNotPrintedRaw) {
  // A double-quoted scalar may spell any character as an escape.
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path: "\e[2J\x07"
)"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  const std::string text = r.diagnostics[0].to_string();
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_NE(text.find("'\\x1b[2J\\x07' is not an absolute path"), std::string::npos) << text;
}

TEST(ParserHostile, ManyErrorsAreCapped) {
  std::string rules;
  for (int i = 0; i < 5000; ++i) rules += "    - path: relative\n";
  const auto r = parse(policy_with("  process:\n    matchPaths:\n" + rules));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics.size(), 200u);
}

TEST(ParserHostile, TooLargeInputIsRefusedUnread) {
  const std::string big(kMaxPolicyBytes + 1, '#');
  const auto r = parse(big);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(r.diagnostics[0].reason.find("input too large"), std::string::npos);
}

TEST(ParserHostile, OddButValidYaml) {
  // Tags, explicit keys, block scalars and quoting styles are plain YAML.
  const auto r = parse(yaml(R"(
%YAML 1.2
---
apiVersion: !!str security.kubearmor.com/v1
? kind
: KubeArmorPolicy
metadata: {name: 'odd'}
spec:
  selector:
    matchLabels: {"app": nginx}
  message: >-
    folded
    message
  process:
    matchPaths:
    - path: "/bin/\x73h"
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->rules[0].value, "/bin/sh");
  EXPECT_EQ(r.policies[0]->rules[0].message, "folded message");
}

// Inputs the fuzzer (tests/fuzz) found; each once hung or crashed the parser.

TEST(ParserFuzzFindings, CommaAtBlockLevelDoesNotExhaustMemory) {
  // yaml-cpp 0.7's LoadAll looped forever on these, allocating an empty document per turn
  // (jbeder/yaml-cpp#1040) until the process ran out of memory.
  const std::string found = "# Audit rawoperatorP sockets and CAP_NET_tch,Protocols:\n"
                            "    - protocol: raw\n" +
                            std::string(116, '\n') +
                            ",icmp\n  capabilities:\n    matchCapabilities:\n"
                            "    - capability: net_raw\n  acmatchDirdit\n";
  const auto r = parse(found);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "", 119, 1, "invalid YAML: unexpected ','",
                        "',' separates items only inside [...] or {...}"));
  for (const std::string text : {",", "- a\n,\n", " - a\n,", " a: b\n,\n", " [a]\n,\n"}) {
    const auto small = parse(text);
    EXPECT_FALSE(small.ok()) << text;
    EXPECT_TRUE(has_error(small, "", small.diagnostics.at(0).line, small.diagnostics.at(0).column,
                          "invalid YAML: unexpected ','"))
        << text;
  }
  EXPECT_TRUE(has_error(parse("- a\n,\n"), "", 2, 1, "unexpected ','"));
}

} // namespace
} // namespace corral::policy
