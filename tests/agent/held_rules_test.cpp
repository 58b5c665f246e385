// The rules the agent leaves for its fd holder (agent/held_rules.h) come back as the same
// verdicts, postures included. No root needed: the "workload" is this process.
#include <filesystem>

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

  save_held_rules(dir, w, *rules, nullptr);
  const auto back = load_held_rules(dir, w.id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->root_prefix, "/");
  EXPECT_EQ(back->rules->fingerprint(), rules->fingerprint());
  EXPECT_TRUE(allows(*back->rules, "/usr/bin/true"));
  EXPECT_FALSE(allows(*back->rules, "/usr/sbin/chroot")); // posture block came back too

  drop_held_rules(dir, w.id);
  EXPECT_FALSE(load_held_rules(dir, w.id));
  EXPECT_FALSE(load_held_rules(dir, "never-saved"));
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace corral::agent
