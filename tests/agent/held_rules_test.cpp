// The rules the agent leaves for its fd holder (agent/held_rules.h) come back as the same
// verdicts, postures included. No root needed: the "workload" is this process.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "agent/held_rules.h"
#include "policy/decide.h"
#include "policy/parser.h"

namespace corral::agent {
namespace {

const char* kAllowTrue = R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: allow-true
  namespace: team
spec:
  selector:
    matchLabels:
      app: held
  process:
    matchPaths:
    - path: /usr/bin/true
  action: Allow
)";

bool allows(const policy::RuleSet& r, const char* path) {
  return policy::decide(r, policy::Access{policy::Category::Process, path, {}, false, true}).allow;
}

TEST(HeldRules, TheHolderJudgesWithTheAgentsLastRules) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("corral-held-rules-" + std::to_string(::getpid()));
  workload::Workload w;
  w.id = "k8s.io/abc"; // a slash: one file all the same
  w.name = "held";
  w.namespace_name = "team";
  w.labels = {{"app", "held"}};
  w.init_pid = ::getpid();
  const auto parsed = policy::parse_policies(kAllowTrue, "t.yaml");
  ASSERT_TRUE(parsed.ok());
  policy::Settings s;
  s.postures.file = policy::Posture::Block;
  const auto rules = policy::compile(parsed.policies, w.policy_view(), s);
  ASSERT_TRUE(allows(*rules, "/usr/bin/true"));
  ASSERT_FALSE(allows(*rules, "/usr/sbin/chroot"));

  HeldRulesStore store(dir, nullptr);
  store.save(w, *rules);
  const auto back = load_held_rules(dir, w.id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->root_prefix, "/");
  EXPECT_EQ(back->rules->fingerprint(), rules->fingerprint());
  EXPECT_TRUE(allows(*back->rules, "/usr/bin/true"));
  EXPECT_FALSE(allows(*back->rules, "/usr/sbin/chroot")); // posture block came back too

  store.drop(w.id);
  EXPECT_FALSE(load_held_rules(dir, w.id));
  EXPECT_FALSE(load_held_rules(dir, "never-saved"));
  std::filesystem::remove_all(dir);
}

size_t rules_files(const std::filesystem::path& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    n += e.path().filename().string().starts_with("rules-") ? 1 : 0;
  return n;
}

// Workloads under the same rules share one rules file (a policy's YAML is written once, not
// once per workload); it goes with the last of them, and a sweep removes what nobody names.
TEST(HeldRules, WorkloadsWithTheSameRulesShareOneFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("corral-held-shared-" + std::to_string(::getpid()));
  const auto parsed = policy::parse_policies(kAllowTrue, "t.yaml");
  ASSERT_TRUE(parsed.ok());
  HeldRulesStore store(dir, nullptr);
  workload::Workload a, b;
  a.id = "a", b.id = "b";
  a.init_pid = b.init_pid = ::getpid();
  a.labels = b.labels = {{"app", "held"}};
  policy::Settings s;
  store.save(a, *policy::compile(parsed.policies, a.policy_view(), s));
  store.save(b, *policy::compile(parsed.policies, b.policy_view(), s));
  EXPECT_EQ(rules_files(dir), 1u);
  s.postures.file = policy::Posture::Block; // other settings: a file of their own
  store.save(b, *policy::compile(parsed.policies, b.policy_view(), s));
  EXPECT_EQ(rules_files(dir), 2u);
  EXPECT_TRUE(load_held_rules(dir, "a") && load_held_rules(dir, "b"));
  store.drop("a");
  EXPECT_EQ(rules_files(dir), 1u);
  ASSERT_TRUE(load_held_rules(dir, "b"));
  EXPECT_EQ(load_held_rules(dir, "b")->rules->settings().postures.file, policy::Posture::Block);
  {
    std::ofstream orphan(dir / "rules-0000-9.json");
    orphan << "{}";
  }
  store.sweep();
  EXPECT_EQ(rules_files(dir), 1u);
  store.drop("b");
  EXPECT_EQ(rules_files(dir), 0u);
  std::filesystem::remove_all(dir);
}

// The policies' texts are written as JSON strings by hand (held_rules.cpp): quotes,
// backslashes, tabs, control characters and UTF-8 come back as they were.
TEST(HeldRules, PolicyTextsComeBackByteForByte) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("corral-held-text-" + std::to_string(::getpid()));
  workload::Workload w;
  w.id = "text";
  w.name = "held";
  w.namespace_name = "team";
  w.labels = {{"app", "held"}};
  w.init_pid = ::getpid();
  const std::string text = std::string(kAllowTrue) +
                           "  message: \"say \\\"no\\\" \\\\ here\\tthere \\u0001 é 日本\"\n" +
                           "  tags: ['it''s', \"\\\\\"]  # comment\n";
  const auto parsed = policy::parse_policies(text, "t.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.diagnostics.front().to_string();
  ASSERT_EQ(parsed.policies[0]->rules[0].message, "say \"no\" \\ here\tthere \x01 é 日本");
  const auto rules = policy::compile(parsed.policies, w.policy_view(), policy::Settings{});
  HeldRulesStore(dir, nullptr).save(w, *rules);
  const auto back = load_held_rules(dir, w.id);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->rules->policies().size(), 1u);
  EXPECT_EQ(back->rules->policies()[0]->source, parsed.policies[0]->source);
  EXPECT_EQ(back->rules->fingerprint(), rules->fingerprint());
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace corral::agent
