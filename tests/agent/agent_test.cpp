// Unit tests of the agent's pieces that need no kernel: state store, canonical paths,
// the Agent's apply/delete/annotate semantics (enforcer none), event formats and the hub.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/canonical_path.h"
#include "events/format.h"
#include "events/hub.h"

namespace corral {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSeed = R"(apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: only-allow-nginx-exec
spec:
  selector:
    matchLabels:
      app: nginx
  file:
    matchDirectories:
    - dir: /
      recursive: true
  process:
    matchPaths:
    - path: /usr/sbin/nginx
    - path: /bin/bash
  action:
    Allow
)";

class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/corral-agent-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] const std::string& path() const { return path_; }

private:
  std::string path_;
};

struct AgentFixture : ::testing::Test {
  TempDir dir;
  std::unique_ptr<agent::StateStore> store = std::move(*agent::StateStore::make(dir.path()));
  std::vector<std::string> logs;
  agent::Agent make_agent() {
    return agent::Agent(agent::AgentConfig{}, *store, nullptr,
                        [this](const std::string& m) { logs.push_back(m); });
  }
  static workload::Workload nginx() {
    workload::Workload w;
    w.id = "c1";
    w.name = "nginx";
    w.namespace_name = "default";
    w.labels = {{"app", "nginx"}};
    return w;
  }
};

TEST_F(AgentFixture, ApplyStoresAndRestoreReloads) {
  {
    auto a = make_agent();
    a.upsert_workload(nginx());
    auto r = a.apply({{"seed.yaml", kSeed}});
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_EQ(r->lines.size(), 1u);
    EXPECT_EQ(r->lines[0], "KubeArmorPolicy/only-allow-nginx-exec configured");
    ASSERT_TRUE(a.annotate("default", {{"kubearmor-file-posture", "block"}}, {}, false).ok());
    const auto ws = a.workloads("");
    ASSERT_EQ(ws.size(), 1u);
    EXPECT_EQ(ws[0].policies, std::vector<std::string>{"only-allow-nginx-exec"});
    EXPECT_EQ(ws[0].settings.postures.file, policy::Posture::Block);
  }
  auto b = make_agent(); // a restarted agent: everything comes back from the state dir
  ASSERT_TRUE(b.restore().ok());
  b.upsert_workload(nginx());
  const auto ws = b.workloads("default");
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].policies, std::vector<std::string>{"only-allow-nginx-exec"});
  EXPECT_EQ(ws[0].settings.postures.file, policy::Posture::Block);
  EXPECT_EQ(ws[0].rules, 3u);
}

// An enforcer whose outcome the test sets: enforce() fails with `refuse`, or succeeds and
// then reports `proof` (issue 7, class 9).
struct FakeEnforcer : enforce::Enforcer {
  std::string refuse;
  enforce::Enforcement proof;
  [[nodiscard]] std::string_view name() const override { return "fake"; }
  std::shared_ptr<const policy::RuleSet> last; // the rules of the last enforce() that took
  Result<void> enforce(const workload::Workload&,
                       std::shared_ptr<const policy::RuleSet> rules) override {
    if (!refuse.empty()) return Error{refuse, "", 0};
    last = std::move(rules);
    return {};
  }
  void release(const std::string&) override {}
  [[nodiscard]] enforce::Counters counters() const override {
    enforce::Counters c;
    c.enforced = refuse.empty() ? 1 : 0;
    return c;
  }
  [[nodiscard]] enforce::Enforcement enforcement(const std::string&) const override {
    return proof;
  }
  // Process and file enforced, capabilities audited, network not handled.
  [[nodiscard]] enforce::Coverage coverage(policy::Category c) const override {
    using L = enforce::Coverage::Level;
    if (c == policy::Category::Network) return {L::Unsupported, "", "no socket hooks"};
    if (c == policy::Category::Capabilities) return {L::Audited, "kprobe", "no LSM hook"};
    return {L::Enforced, "fake", ""};
  }
};

TEST_F(AgentFixture, EveryRuleNotEnforcedHereIsNamedAtApplyAndPerWorkload) {
  FakeEnforcer fake;
  agent::Agent a(agent::AgentConfig{}, *store, &fake, [](const std::string&) {});
  a.upsert_workload([] {
    auto w = nginx();
    w.init_pid = 1;
    return w;
  }());
  const std::string text = std::string(kSeed) + R"(  network:
    matchProtocols:
    - protocol: raw
      action: Block
  capabilities:
    matchCapabilities:
    - capability: net_raw
      action: Block
)";
  auto r = a.apply({{"caps.yaml", text}});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  std::vector<std::string> named;
  for (const auto& w : r->warnings)
    if (w.find("NOT ENFORCED on this node") != std::string::npos) named.push_back(w);
  ASSERT_EQ(named.size(), 2u) << testing::PrintToString(r->warnings);
  EXPECT_NE(named[0].find("spec.network.matchProtocols[0] (Block raw): NOT ENFORCED on this node, "
                          "unsupported: no socket hooks"),
            std::string::npos)
      << named[0];
  EXPECT_NE(named[1].find("spec.capabilities.matchCapabilities[0] (Block net_raw): NOT ENFORCED "
                          "on this node, audited only by kprobe: no LSM hook"),
            std::string::npos)
      << named[1];
  const auto ws = a.workloads("");
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].sections,
            (std::vector<std::string>{"process=enforced", "file=enforced", "network=unsupported",
                                      "capabilities=audited only"}));
}

TEST(CompositeEnforcer, AChangeOneBackendRefusesIsUndoneInTheOthers) {
  FakeEnforcer first, second;
  enforce::CompositeEnforcer both({&first, &second});
  workload::Workload w;
  w.id = "c1";
  auto v1 = policy::compile({}, w.policy_view(), {});
  auto v2 = policy::compile({}, w.policy_view(), {});
  ASSERT_TRUE(both.enforce(w, v1).ok());
  second.refuse = "no room";
  const auto r = both.enforce(w, v2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "fake: no room");
  EXPECT_EQ(first.last, v1) << "the first backend must be given the rules in force back";
  // A first enforcement that one backend refuses stays in force in the other.
  workload::Workload w2;
  w2.id = "c2";
  first.last.reset();
  EXPECT_FALSE(both.enforce(w2, v2).ok());
  EXPECT_EQ(first.last, v2) << "a first enforcement must not be lifted where it took";
  EXPECT_EQ(both.coverage(policy::Category::Capabilities).level, enforce::Coverage::Level::Audited);
}

TEST_F(AgentFixture, AProvenWorkloadShowsEnforcedAndAnUnprovenOneSaysWhyNot) {
  FakeEnforcer fake;
  agent::Agent a(agent::AgentConfig{}, *store, &fake, [](const std::string&) {});
  auto w = nginx();
  w.init_pid = 4242;
  a.upsert_workload(w);
  EXPECT_EQ(a.workloads("")[0].enforcement, "-"); // no policy: nothing to enforce
  ASSERT_TRUE(a.apply({{"seed.yaml", kSeed}}).ok());
  fake.proof = {enforce::Enforcement::State::Proving, ""};
  EXPECT_EQ(a.workloads("")[0].enforcement, "proving");
  fake.proof = {enforce::Enforcement::State::Enforced, ""};
  EXPECT_EQ(a.workloads("")[0].enforcement, "enforced");
  EXPECT_FALSE(a.workloads("")[0].not_enforced());
  fake.proof = {enforce::Enforcement::State::NotEnforced, "no event"};
  EXPECT_EQ(a.workloads("")[0].enforcement, "NOT ENFORCED: no event");
  EXPECT_TRUE(a.workloads("")[0].not_enforced());
}

TEST_F(AgentFixture, AWorkloadTheEnforcerRefusesIsNotEnforcedAndAlerted) {
  FakeEnforcer fake;
  fake.refuse = "cannot mark the root mount of pid 4242";
  agent::Agent a(agent::AgentConfig{}, *store, &fake, [](const std::string&) {});
  std::vector<events::Alert> alerts;
  a.set_alert_sink([&](events::Alert&& x) { alerts.push_back(std::move(x)); });
  auto w = nginx();
  w.init_pid = 4242;
  a.upsert_workload(w);
  ASSERT_TRUE(a.apply({{"seed.yaml", kSeed}}).ok());
  const auto v = a.workloads("")[0];
  EXPECT_TRUE(v.not_enforced());
  EXPECT_NE(v.enforcement.find("cannot mark the root mount"), std::string::npos) << v.enforcement;
  EXPECT_EQ(v.enforcer, "none");
  ASSERT_EQ(alerts.size(), 2u); // the workload's, then the apply's PolicyChange
  EXPECT_EQ(alerts[1].type, "PolicyChange");
  EXPECT_EQ(alerts[0].policy_name, "corral-enforcement-proof");
  EXPECT_EQ(alerts[0].container_id, "c1");
  EXPECT_EQ(alerts[0].result, "NOT ENFORCED");
  EXPECT_TRUE(alerts[0].is_alert()); // shown by `corral logs`
}

// Issue 12: each change is one PolicyChange alert and one change-log entry (an unchanged
// apply neither); a lock's ignored rules are in the apply's warnings and the alert.
TEST_F(AgentFixture, EveryChangeIsOneAlertAndOneChainedEntry) {
  FakeEnforcer fake;
  agent::Agent a(agent::AgentConfig{}, *store, &fake, [](const std::string&) {});
  auto history = agent::History::open(dir.path());
  ASSERT_TRUE(history.ok());
  a.set_history(history->get());
  std::vector<events::Alert> alerts;
  a.set_alert_sink([&](events::Alert&& x) { alerts.push_back(std::move(x)); });
  auto w = nginx();
  w.init_pid = 4242;
  a.upsert_workload(w);
  std::string locked = kSeed;
  locked.replace(locked.find("spec:"), 5, "  annotations:\n    corral.dev/lock: \"true\"\nspec:");
  ASSERT_TRUE(a.apply({{"seed.yaml", locked}}, "local uid 0 (corral apply)").ok());
  ASSERT_TRUE(a.annotate("default", {{"kubearmor-file-posture", "block"}}, {}, false).ok());
  const std::string chroot = R"(apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: allow-chroot
spec:
  selector:
    matchLabels:
      app: nginx
  process:
    matchPaths:
    - path: /usr/sbin/chroot
  action: Allow
)";
  auto out = a.apply({{"chroot.yaml", chroot}});
  ASSERT_TRUE(out.ok());
  const std::string ignored = "KubeArmorPolicy/allow-chroot spec.process.matchPaths[0] (Allow "
                              "/usr/sbin/chroot) is ignored where the locked policy "
                              "only-allow-nginx-exec denies";
  ASSERT_FALSE(out->warnings.empty());
  EXPECT_NE(out->warnings[0].find(ignored), std::string::npos) << out->warnings[0];
  auto again = a.apply({{"chroot.yaml", chroot}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->lines, std::vector<std::string>{"KubeArmorPolicy/allow-chroot unchanged"});
  ASSERT_TRUE(a.remove({"KubeArmorPolicy/default/allow-chroot"}).ok());
  ASSERT_EQ(alerts.size(), 4u);
  EXPECT_EQ(alerts[0].source, "local uid 0 (corral apply)");
  EXPECT_EQ(alerts[1].resource, "Namespace//default");
  EXPECT_NE(alerts[2].message.find("ignored by a lock: KubeArmorPolicy/allow-chroot"),
            std::string::npos)
      << alerts[2].message;
  EXPECT_EQ(alerts[3].action, "Deleted");
  const auto entries = a.history("");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[2].object, "KubeArmorPolicy/default/allow-chroot");
  EXPECT_EQ((*entries)[2].prev, (*entries)[1].hash);
  EXPECT_EQ(alerts[2].data, "sha256=" + (*entries)[2].digest + " history=3");
  EXPECT_TRUE(a.verify().ok()) << a.verify().problems.front();
}

// Every setting of a namespace's annotations reaches its enforced workloads, the image-only
// rule included (a change of it alone was once taken for no change).
TEST_F(AgentFixture, TheImageOnlyAnnotationReachesEnforcedWorkloads) {
  FakeEnforcer fake;
  agent::Agent a(agent::AgentConfig{}, *store, &fake, [](const std::string&) {});
  auto w = nginx();
  w.init_pid = 4242;
  a.upsert_workload(w);
  ASSERT_TRUE(a.apply({{"seed.yaml", kSeed}}).ok());
  ASSERT_TRUE(fake.last);
  EXPECT_TRUE(fake.last->settings().image_only);
  ASSERT_TRUE(a.annotate("default", {{"corral.io/exec-image-only", "false"}}, {}, false).ok());
  EXPECT_FALSE(fake.last->settings().image_only);
}

TEST_F(AgentFixture, EachDocumentOfAFileIsStoredAndRestoredOnItsOwn) {
  const std::string second = "# a comment\napiVersion: security.kubearmor.com/v1\n"
                             "kind: KubeArmorPolicy\nmetadata:\n  name: other\n"
                             "  annotations: &a [*a]\n" // a cyclic alias: never re-emitted
                             "spec:\n  selector: {}\n  process:\n    matchPaths:\n"
                             "    - path: /usr/bin/id\n";
  {
    auto a = make_agent();
    auto r = a.apply({{"two.yaml", std::string(kSeed) + "---\n" + second}});
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_EQ(r->lines.size(), 2u);
    ASSERT_TRUE(a.remove({"KubeArmorPolicy/default/only-allow-nginx-exec"}).ok());
  }
  auto b = make_agent();
  ASSERT_TRUE(b.restore().ok());
  const auto ps = b.policies("");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].policy->name, "other");
  EXPECT_EQ(ps[0].policy->rules.at(0).value, "/usr/bin/id");
}

TEST_F(AgentFixture, InvalidInputAppliesNothing) {
  auto a = make_agent();
  const std::string bad = std::string(kSeed) + "---\n" +
                          "apiVersion: security.kubearmor.com/v1\n"
                          "kind: KubeArmorPolicy\nmetadata: {name: x}\nspec:\n  selector: {}\n"
                          "  process:\n    matchPaths:\n    - path: relative\n";
  auto r = a.apply({{"two.yaml", bad}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("two.yaml:27:"), std::string::npos) << r.error().message;
  EXPECT_TRUE(a.policies("").empty());
  EXPECT_TRUE(fs::is_empty(dir.path() + "/policies"));
}

TEST_F(AgentFixture, DeleteUnknownPolicyChangesNothing) {
  auto a = make_agent();
  ASSERT_TRUE(a.apply({{"seed.yaml", kSeed}}).ok());
  auto r = a.remove({"KubeArmorPolicy/default/only-allow-nginx-exec", "KubeArmorPolicy/default/x"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not applied"), std::string::npos);
  EXPECT_EQ(a.policies("").size(), 1u);
  ASSERT_TRUE(a.remove({"KubeArmorPolicy/default/only-allow-nginx-exec"}).ok());
  EXPECT_TRUE(a.policies("").empty());
  EXPECT_TRUE(fs::is_empty(dir.path() + "/policies"));
}

TEST_F(AgentFixture, AnnotateNeedsOverwriteAndValidValues) {
  auto a = make_agent();
  ASSERT_TRUE(a.annotate("default", {{"kubearmor-file-posture", "audit"}}, {}, false).ok());
  auto again = a.annotate("default", {{"kubearmor-file-posture", "block"}}, {}, false);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().hint.find("--overwrite"), std::string::npos);
  EXPECT_FALSE(a.annotate("default", {{"kubearmor-file-posture", "deny"}}, {}, true).ok());
  EXPECT_EQ(a.annotations("default").at("kubearmor-file-posture"), "audit");
  ASSERT_TRUE(a.annotate("default", {{"kubearmor-file-posture", "block"}}, {}, true).ok());
  EXPECT_EQ(a.annotations("default").at("kubearmor-file-posture"), "block");
  ASSERT_TRUE(a.annotate("default", {}, {"kubearmor-file-posture"}, false).ok());
  EXPECT_TRUE(a.annotations("default").empty());
}

TEST_F(AgentFixture, TheImageOnlyAnnotationTakesTrueOrFalse) {
  auto a = make_agent();
  const auto bad = a.annotate("default", {{"corral.io/exec-image-only", "maybe"}}, {}, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().hint.find("true"), std::string::npos) << bad.error().hint;
  EXPECT_TRUE(a.annotations("default").empty());
  ASSERT_TRUE(a.annotate("default", {{"corral.io/exec-image-only", "false"}}, {}, false).ok());
  EXPECT_EQ(a.annotations("default").at("corral.io/exec-image-only"), "false");
}

// Kubernetes mode (agent/kube_source.h drives these calls from the API).
workload::Workload pod_container(const std::string& id, const std::string& uid,
                                 const std::string& kind) {
  workload::Workload w;
  w.id = id;
  w.name = kind == "sandbox" ? "POD" : "web";
  w.namespace_name = "default";
  w.pod = "web-1";
  w.runtime_namespace = "k8s.io";
  w.labels = {{agent::kPodUidLabel, uid},
              {agent::kCriKindLabel, kind},
              {"io.kubernetes.pod.name", "web-1"},
              {"io.kubernetes.pod.namespace", "default"}};
  if (kind == "sandbox") w.labels["app"] = "nginx"; // the CRI plugin copies the pod's labels
  return w;
}

// Issue 12: a pod relabelled off a locked policy, or annotated to dry run, is alerted at
// severity 10; the dry-run annotation does not weaken the locked workload at all.
TEST_F(AgentFixture, APodChangeThatDropsItsLockIsAlerted) {
  auto a = make_agent();
  a.set_kubernetes(true);
  std::vector<events::Alert> alerts;
  a.set_alert_sink([&](events::Alert&& x) { alerts.push_back(std::move(x)); });
  std::string locked = kSeed;
  locked.replace(locked.find("spec:"), 5, "  annotations:\n    corral.dev/lock: \"true\"\nspec:");
  auto parsed = policy::parse_policies(locked, "seed.yaml");
  ASSERT_TRUE(parsed.ok());
  a.sync_policies(parsed.policies, {});
  ASSERT_TRUE(a.set_namespace("default", {{"kubearmor-file-posture", "block"}}).lines.size() == 1);
  a.upsert_workload(pod_container("sandbox1", "uid-1", "sandbox"));
  a.upsert_workload(pod_container("app1", "uid-1", "container"));
  a.put_pod({"uid-1", "web-1", "default", {{"app", "nginx"}}, {}});
  const size_t changes = alerts.size(); // the policy's and the namespace's
  a.put_pod({"uid-1", "web-1", "default", {{"app", "nginx"}}, {{"kubearmor-policy", "audited"}}});
  EXPECT_FALSE(a.workloads("")[0].settings.dry_run) << "a pod's dry run weakened a lock";
  EXPECT_EQ(alerts.size(), changes);
  a.put_pod({"uid-1", "web-1", "default", {{"app", "other"}}, {}});
  ASSERT_EQ(alerts.size(), changes + 1);
  EXPECT_EQ(alerts.back().type, "PolicyChange");
  EXPECT_EQ(alerts.back().resource, "Pod/default/web-1");
  EXPECT_EQ(alerts.back().severity, "10");
  EXPECT_NE(alerts.back().message.find("no longer selected by the locked policy "
                                       "only-allow-nginx-exec"),
            std::string::npos)
      << alerts.back().message;
}

TEST_F(AgentFixture, APodsContainerTakesItsSandboxsLabelsThenThePodsFromTheApi) {
  auto a = make_agent();
  a.set_kubernetes(true);
  ASSERT_TRUE(a.sync_policies({}, {}).lines.empty());
  auto parsed = policy::parse_policies(kSeed, "seed.yaml");
  ASSERT_TRUE(parsed.ok());
  const auto out =
      a.sync_policies(parsed.policies, {{parsed.policies[0]->key(), "kubernetes (uid u1)"}});
  ASSERT_EQ(out.lines.size(), 1u);
  a.upsert_workload(pod_container("sandbox1", "uid-1", "sandbox"));
  a.upsert_workload(pod_container("app1", "uid-1", "container"));
  auto ws = a.workloads("");
  ASSERT_EQ(ws.size(), 1u) << "a sandbox is never a workload";
  EXPECT_EQ(ws[0].workload.id, "app1");
  EXPECT_EQ(ws[0].workload.labels, (policy::Labels{{"app", "nginx"}}));
  EXPECT_EQ(ws[0].policies, std::vector<std::string>{"only-allow-nginx-exec"});
  // The API's pod wins over the sandbox's labels: a relabelled pod is re-selected.
  a.put_pod({"uid-1", "web-1", "default", {{"app", "other"}}, {}});
  ws = a.workloads("");
  EXPECT_EQ(ws[0].workload.labels, (policy::Labels{{"app", "other"}}));
  EXPECT_TRUE(ws[0].policies.empty());
  a.replace_pods(
      {{"uid-1", "web-1", "default", {{"app", "nginx"}}, {{"kubearmor-policy", "enabled"}}}});
  ws = a.workloads("");
  EXPECT_EQ(ws[0].policies, std::vector<std::string>{"only-allow-nginx-exec"});
  EXPECT_EQ(a.pod_count(), 1u);
  EXPECT_EQ(a.policies("")[0].source, "kubernetes (uid u1)");
}

TEST_F(AgentFixture, ACompleteListLiftsWhatVanishedAndKeepsWhatIsInvalidNow) {
  auto a = make_agent();
  auto seed = policy::parse_policies(kSeed, "seed.yaml").policies;
  std::string other_text = kSeed;
  other_text.replace(other_text.find("only-allow-nginx-exec"), 21, "second-policy-of-nginx");
  auto other = policy::parse_policies(other_text, "other.yaml").policies;
  a.sync_policies({seed[0], other[0]}, {});
  ASSERT_EQ(a.policies("").size(), 2u);
  // Unchanged text: the policy in force stays (no recompiling, no "configured").
  EXPECT_TRUE(
      a.sync_policies(policy::parse_policies(kSeed, "again.yaml").policies, {}).lines.empty());
  // A relist where `other` is gone and the seed is invalid now (kept): only `other` goes.
  const auto out = a.sync_policies({}, {}, policy::Kind::Policy, {seed[0]->key()});
  ASSERT_EQ(out.lines.size(), 1u);
  EXPECT_EQ(out.lines[0], "KubeArmorPolicy/second-policy-of-nginx deleted");
  ASSERT_EQ(a.policies("").size(), 1u);
  EXPECT_TRUE(a.remove_policy(seed[0]->key()).lines.size() == 1);
  EXPECT_TRUE(a.remove_policy(seed[0]->key()).lines.empty()) << "absent is not an error";
}

TEST_F(AgentFixture, NamespaceAnnotationsFromTheApiKeepOnlyWhatTheAgentReads) {
  auto a = make_agent();
  auto out = a.set_namespace("default", {{"kubearmor-file-posture", "block"},
                                         {"kubearmor-network-posture", "sideways"},
                                         {"kubectl.kubernetes.io/last-applied", "{}"}});
  EXPECT_EQ(a.annotations("default"), (policy::Labels{{"kubearmor-file-posture", "block"}}));
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.warnings[0].find("kubearmor-network-posture"), std::string::npos);
  a.replace_namespaces({{"kube-system", {}}});
  EXPECT_TRUE(a.annotations("default").empty()) << "a namespace gone from the list is unannotated";
}

TEST(CanonicalPath, FollowsSymlinksInsideTheRoot) {
  TempDir root;
  const auto& r = root.path();
  fs::create_directories(r + "/usr/bin");
  fs::create_directories(r + "/etc");
  std::ofstream(r + "/usr/bin/bash") << "x";
  fs::create_directory_symlink("usr/bin", r + "/bin");
  fs::create_symlink("/usr/bin/bash", r + "/usr/bin/sh");  // absolute: restarts at the root
  fs::create_symlink("../../../../../etc", r + "/usr/up"); // cannot climb above the root
  EXPECT_EQ(agent::resolve_in_root(r, "/bin/bash"), "/usr/bin/bash");
  EXPECT_EQ(agent::resolve_in_root(r, "/bin/sh"), "/usr/bin/bash");
  EXPECT_EQ(agent::resolve_in_root(r, "/usr/up"), "/etc");
  EXPECT_EQ(agent::resolve_in_root(r, "/usr/bin/../bin/./bash"), "/usr/bin/bash");
  EXPECT_EQ(agent::resolve_in_root(r, "/bin/missing"), std::nullopt);
  fs::create_symlink("loop", r + "/loop");
  EXPECT_EQ(agent::resolve_in_root(r, "/loop"), std::nullopt);
}

// A compile's resolver remembers directories and links, and answers as resolve_in_root.
TEST(CanonicalPath, TheCachingResolverAnswersAsResolveInRoot) {
  TempDir root;
  const auto& r = root.path();
  fs::create_directories(r + "/usr/bin");
  fs::create_directories(r + "/etc/app");
  std::ofstream(r + "/usr/bin/bash") << "x";
  std::ofstream(r + "/etc/app/conf") << "x";
  fs::create_directory_symlink("usr/bin", r + "/bin");
  fs::create_symlink("/usr/bin/bash", r + "/usr/bin/sh");
  fs::create_symlink("../../../../../etc", r + "/usr/up");
  fs::create_directory_symlink("/etc/app", r + "/etc/link");
  fs::create_symlink("loop", r + "/loop");
  const auto resolve = agent::caching_resolver(r);
  for (int round = 0; round < 2; ++round) { // the second from what it remembers
    for (const std::string p :
         {"/bin/bash", "/bin/sh", "/usr/up", "/usr/up/app/conf", "/usr/bin/../bin/./bash",
          "/bin/missing", "/missing/x/y", "/loop", "/loop/x", "/etc/link/conf", "/etc/app/conf",
          "/etc//app/conf", "/", "/etc/", "/usr/bin/.", "/usr/bin/.."}) {
      EXPECT_EQ(resolve(p), agent::resolve_in_root(r, p)) << p;
    }
  }
  EXPECT_EQ(resolve("/etc/link/conf"), "/etc/app/conf");
}

// A symlink the workload made after it started is not followed: an Allow of /bin/bash must
// not become one of chroot through `ln -sf /usr/sbin/chroot /usr/bin/bash` (issue 12 review).
TEST(CanonicalPath, ASymlinkNewerThanTheWorkloadIsNotFollowed) {
  TempDir root;
  const auto& r = root.path();
  fs::create_directories(r + "/usr/bin");
  fs::create_directories(r + "/usr/sbin");
  std::ofstream(r + "/usr/sbin/chroot") << "x";
  fs::create_directory_symlink("usr/bin", r + "/bin"); // the image's
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const uint64_t start = static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + now.tv_nsec + 1;
  ::usleep(20000);
  fs::create_symlink("/usr/sbin/chroot", r + "/usr/bin/bash"); // the workload's, later
  EXPECT_EQ(agent::caching_resolver(r)("/bin/bash"), "/usr/sbin/chroot");
  EXPECT_EQ(agent::caching_resolver(r, start)("/bin/bash"), "/usr/bin/bash");
  // The image's own link (older than the start) is still followed.
  EXPECT_EQ(agent::caching_resolver(r, start)("/bin/missing"), std::nullopt);
  std::ofstream(r + "/usr/bin/ls") << "x";
  EXPECT_EQ(agent::caching_resolver(r, start)("/bin/ls"), "/usr/bin/ls");
}

events::Alert sample_alert() {
  events::Alert a;
  a.timestamp = 1795893960;
  a.updated_time = events::rfc3339_micros(1795893960123456);
  a.namespace_name = "default";
  a.pod_name = "web-0";
  a.container_name = "nginx";
  a.policy_name = "DefaultPosture";
  a.operation = "Process";
  a.resource = "/usr/sbin/chroot";
  a.action = "Block";
  a.result = "Permission denied";
  a.enforcer = "fanotify";
  a.host_pid = 42;
  return a;
}

TEST(EventFormat, JsonUsesKubeArmorNamesAndRoundTrips) {
  const auto j = events::to_json(sample_alert());
  EXPECT_EQ(j["PolicyName"], "DefaultPosture");
  EXPECT_EQ(j["UpdatedTime"], "2026-11-28T19:26:00.123456Z");
  EXPECT_EQ(j["HostPID"], 42);
  EXPECT_FALSE(j.contains("Severity")); // empty fields are omitted, as KubeArmor does
  const auto back = events::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(events::to_json(back), j);
}

TEST(EventFormat, TextFollowsKarmorOrder) {
  const std::string t = events::to_text(sample_alert());
  EXPECT_EQ(t.rfind("== Alert / 2026-11-28T19:26:00.123456Z ==\n", 0), 0u) << t;
  EXPECT_LT(t.find("NamespaceName: default"), t.find("PodName: web-0"));
  EXPECT_LT(t.find("PolicyName:"), t.find("Resource:"));
  EXPECT_LT(t.find("Resource:"), t.find("Operation:"));
  EXPECT_LT(t.find("Result:"), t.find("HostPID: 42")); // the rest follows, sorted
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Issue 7 class 8: the file holds every alert's argv and cwd.
TEST(EventHub, CreatesTheEventsFilePrivate) {
  TempDir dir;
  const std::string file = dir.path() + "/events.jsonl";
  const mode_t old = ::umask(0); // the mode must not depend on the agent's umask
  auto hub = events::EventHub::make(3, file);
  ::umask(old);
  ASSERT_TRUE(hub) << hub.error().to_string();
  EXPECT_EQ(mode_of(file), 0600u);
}

TEST(EventHub, MakesAnExistingEventsFilePrivateAndKeepsItsLines) {
  TempDir dir;
  const std::string file = dir.path() + "/events.jsonl";
  std::ofstream(file) << "{\"old\":1}\n";
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0); // as earlier agents created it
  {
    auto hub = events::EventHub::make(3, file);
    ASSERT_TRUE(hub) << hub.error().to_string();
    EXPECT_EQ(mode_of(file), 0600u);
    (*hub)->publish(sample_alert());
  }
  std::ifstream in(file);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  EXPECT_EQ(first, "{\"old\":1}"); // appended, not truncated
  EXPECT_FALSE(second.empty());
}

TEST(EventHub, AGroupOfReadersGetsMode0640) {
  TempDir dir;
  const std::string file = dir.path() + "/events.jsonl";
  std::ofstream(file) << "";
  ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
  auto hub = events::EventHub::make(3, events::EventHub::FileOptions{file, ::getgid()});
  ASSERT_TRUE(hub) << hub.error().to_string();
  EXPECT_EQ(mode_of(file), 0640u);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, ::getgid());
}

TEST(EventHub, RefusesAnEventsFileThatIsNotARegularFile) {
  TempDir dir;
  const auto hub = events::EventHub::make(3, dir.path());
  EXPECT_FALSE(hub);
}

TEST(EventHub, KeepsTheNewestFiltersAndWritesJsonLines) {
  TempDir dir;
  const std::string file = dir.path() + "/events.jsonl";
  {
    auto hub = std::move(*events::EventHub::make(3, file));
    for (int i = 0; i < 5; ++i) {
      auto a = sample_alert();
      a.resource = "/r" + std::to_string(i);
      if (i == 4) a.policy_name.clear(); // a Log
      hub->publish(std::move(a));
    }
    EXPECT_EQ(hub->evicted(), 1u);
    EXPECT_EQ(hub->logs(), 1u);
    uint64_t last = 0;
    events::Filter alerts;
    const auto got = hub->newest(alerts, 0, &last);
    ASSERT_EQ(got.size(), 3u); // r1, r2, r3 (r4 is a log; r0 evicted)
    EXPECT_EQ(got[0].resource, "/r1");
    EXPECT_EQ(got[2].resource, "/r3");
    EXPECT_EQ(hub->newest(alerts, 1, &last)[0].resource, "/r3");
    events::Filter all;
    all.log_filter = "all";
    all.resource = "r4";
    EXPECT_EQ(hub->newest(all, 0, &last).size(), 1u);
    EXPECT_FALSE(hub->wait(last, std::chrono::milliseconds(1)));
  } // the writer thread flushes before the hub is gone
  std::ifstream in(file);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    EXPECT_EQ(nlohmann::json::parse(line)["Resource"], "/r" + std::to_string(lines));
    ++lines;
  }
  EXPECT_EQ(lines, 4); // the alerts: logs are streamed, not written
}

// A storm of visibility logs never evicts an alert; both come back in publication order.
TEST(EventHub, LogsHaveARingOfTheirOwn) {
  auto hub = std::move(*events::EventHub::make(4, std::string()));
  auto alert = sample_alert();
  alert.resource = "/alert";
  hub->publish(std::move(alert));
  uint64_t start = 0;
  (void)hub->newest(events::Filter{}, 0, &start);
  for (int i = 0; i < 100; ++i) {
    auto log = sample_alert();
    log.policy_name.clear();
    log.resource = "/log" + std::to_string(i);
    hub->publish(std::move(log));
    if (i == 97) {
      auto a = sample_alert();
      a.resource = "/alert2";
      hub->publish(std::move(a));
    }
  }
  EXPECT_EQ(hub->evicted(), 0u);
  EXPECT_EQ(hub->logs_evicted(), 96u);
  uint64_t last = 0;
  events::Filter all;
  all.log_filter = "all";
  const auto newest = hub->newest(all, 3, &last);
  ASSERT_EQ(newest.size(), 3u);
  EXPECT_EQ(newest[0].resource, "/alert2");
  EXPECT_EQ(newest[1].resource, "/log98");
  EXPECT_EQ(newest[2].resource, "/log99");
  const auto merged = hub->since(0, all, &last);
  ASSERT_EQ(merged.size(), 6u); // both alerts, the 4 logs kept
  EXPECT_EQ(merged[0].resource, "/alert");
  EXPECT_EQ(merged[1].resource, "/log96");
  EXPECT_EQ(merged[3].resource, "/alert2");
  events::Filter logs;
  logs.log_filter = "system";
  EXPECT_EQ(hub->since(start, logs, &last).size(), 4u);
  EXPECT_EQ(hub->since(start, events::Filter{}, &last).size(), 1u);
}

// A reader's cursor counts what the ring evicted before the reader read it (a slow client's
// drops), for the rings its filter reads only.
TEST(EventHub, ReadCountsWhatASlowReaderMissed) {
  auto hub = std::move(*events::EventHub::make(4, std::string()));
  events::Filter alerts;
  alerts.log_filter = "policy";
  auto c = hub->end();
  for (int i = 0; i < 10; ++i) {
    auto a = sample_alert();
    a.resource = "/a" + std::to_string(i);
    hub->publish(std::move(a));
    auto log = sample_alert();
    log.policy_name.clear();
    hub->publish(std::move(log));
  }
  uint64_t missed = 0;
  auto got = hub->read(&c, alerts, &missed);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].resource, "/a6");
  EXPECT_EQ(missed, 6u);
  EXPECT_LT(got[0].seq, got[1].seq);
  got = hub->read(&c, alerts, &missed);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(missed, 0u);
}

// A restarted hub reads its file back and numbers on above it: a reader resuming after the
// last sequence number it had gets the new events, and nothing twice.
TEST(EventHub, ReloadsItsFileAndNumbersAboveIt) {
  TempDir dir;
  const std::string file = dir.path() + "/events.jsonl";
  uint64_t last_seq = 0;
  {
    auto hub = std::move(*events::EventHub::make(100, file));
    for (int i = 0; i < 3; ++i) {
      auto a = sample_alert();
      a.resource = "/before" + std::to_string(i);
      hub->publish(std::move(a));
    }
    uint64_t last = 0;
    last_seq = hub->newest(events::Filter{}, 1, &last).at(0).seq;
  }
  auto hub = std::move(*events::EventHub::make(100, file));
  uint64_t last = 0;
  auto kept = hub->newest(events::Filter{}, 0, &last);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[2].resource, "/before2");
  EXPECT_EQ(kept[2].seq, last_seq);
  auto a = sample_alert();
  hub->publish(std::move(a));
  auto now = hub->newest(events::Filter{}, 1, &last);
  EXPECT_GT(now.at(0).seq, last_seq);
}

} // namespace
} // namespace corral
