// The agent's core: the applied policies, namespace annotations and known workloads, and
// the reconciliation that turns them into one RuleSet per workload for the enforcer.
// Thread-safe: the API server, the workload source and the startup code call it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/history.h"
#include "agent/policy_change.h"
#include "agent/state_store.h"
#include "core/result.h"
#include "enforce/enforcer.h"
#include "events/hub.h"
#include "policy/parser.h"
#include "workload/workload.h"

namespace corral::agent {

struct AgentConfig {
  policy::Postures default_postures;
  // kubearmor-visibility where neither the namespace nor the pod says (agent/activity.h bits).
  unsigned default_visibility = 0;
  std::string cluster_name = "default";
  std::string host_name;
};

struct PolicyView {
  policy::PolicyPtr policy;
  std::vector<std::string> workloads; // ids selected now
  std::string applied;                // RFC3339
  std::string source;                 // "local" (corral apply) or "kubernetes …"
};

// A pod of this node as the Kubernetes API tells it: its containers take its labels.
struct Pod {
  std::string uid;
  std::string name;
  std::string namespace_name;
  policy::Labels labels;
  policy::Labels annotations;
  bool operator==(const Pod&) const = default;
};

// What the Kubernetes source (agent/kube_source.h) reports for `corral get status`.
struct KubernetesStatus {
  std::string state; // connected | unreachable | connecting
  std::string server, node, config, error;
  int64_t last_sync = 0;
  uint64_t watch_restarts = 0, relists = 0;
};

// A running workload and what its visibility asks to see (agent/activity.h bits), for the
// system monitor's consumer.
struct WatchedWorkload {
  workload::Workload w;
  unsigned visibility = 0;
};

// The labels and annotations the CRI plugin puts on a pod's containers.
inline constexpr const char* kPodUidLabel = "io.kubernetes.pod.uid";
inline constexpr const char* kCriKindLabel = "io.cri-containerd.kind"; // sandbox | container

struct WorkloadView {
  workload::Workload workload;
  std::vector<std::string> policies;
  policy::Settings settings;
  size_t rules = 0;
  std::string enforcer; // "none" when not enforced
  // Whether enforcement is proven (issue 7, class 9): "enforced", "proving", "unproven"
  // (a backend that does not prove), "NOT ENFORCED: <reason>", or "-" (nothing to enforce).
  std::string enforcement = "-";
  std::string fingerprint; // of the rules in force ("" when none)
  // Per section with rules: "process=enforced", "network=unsupported", ... (issue 9).
  std::vector<std::string> sections;
  [[nodiscard]] bool not_enforced() const { return enforcement.starts_with("NOT ENFORCED"); }
  // Enforced, but on rules older than its policies now say (the last change failed).
  [[nodiscard]] bool stale() const { return enforcement.starts_with("STALE"); }
};

// Workloads whose enforcer has hooks in place (`hooked`, its counters' `enforced`), less those
// proven NOT ENFORCED: what `corral get status` and the metrics call enforced.
uint64_t enforced_workloads(uint64_t hooked, const std::vector<WorkloadView>& workloads);

class Agent {
public:
  Agent(AgentConfig config, StateStore& store, enforce::Enforcer* enforcer,
        std::function<void(const std::string&)> log);

  // Loads the stored policies and annotations (at start, before serving the API).
  Result<void> restore();

  struct Outcome {
    std::vector<std::string> lines;    // "KubeArmorPolicy/name configured"
    std::vector<std::string> warnings; // conflicts, validation warnings, empty selections
    // Workloads the enforcer could not give their new rules ("name: reason"): each keeps
    // its previous rules (or, never enforced, stays NOT ENFORCED) and is retried.
    std::vector<std::string> failed;
  };
  // Validates every file first; on any error nothing is applied and the Error lists all
  // diagnostics, one per line.
  // `who` is the change's source in its PolicyChange alert and the change log.
  Result<Outcome> apply(const std::vector<std::pair<std::string, std::string>>& files,
                        const std::string& who = "local");
  Result<Outcome> remove(const std::vector<std::string>& keys, const std::string& who = "local");
  // Keys of the policies the files define (for `corral delete -f`).
  Result<std::vector<std::string>>
  keys_of(const std::vector<std::pair<std::string, std::string>>& files) const;
  Result<Outcome> annotate(const std::string& ns, const policy::Labels& set,
                           const std::vector<std::string>& remove, bool overwrite,
                           const std::string& who = "local");
  [[nodiscard]] policy::Labels annotations(const std::string& ns) const;

  // Kubernetes mode (agent/kube_source.h): the API server is the only source of policies
  // and namespace annotations; the CLI's apply, delete and annotate are refused.
  void set_kubernetes(bool on);
  [[nodiscard]] bool kubernetes() const;
  void set_kubernetes_status(std::function<KubernetesStatus()> status);
  // More lines for `corral get status` (name -> value), e.g. the system monitor's counts.
  void set_extra_status(std::function<void(std::map<std::string, std::string>&)> extra);
  void extra_status(std::map<std::string, std::string>& out) const;
  [[nodiscard]] std::optional<KubernetesStatus> kubernetes_status() const;
  // Policies from the API, already valid: each of `put` is added or replaced (`source`
  // says where it came from). With `replace_kind`, every policy of that kind that is in
  // neither `put` nor `keep` is deleted (a complete list: what vanished is lifted).
  Outcome sync_policies(const std::vector<policy::PolicyPtr>& put,
                        const std::map<std::string, std::string>& sources,
                        std::optional<policy::Kind> replace_kind = {},
                        const std::set<std::string>& keep = {});
  // A policy deleted through the API (by Policy::key()); absent is not an error.
  Outcome remove_policy(const std::string& key, const std::string& source = "kubernetes");
  // A namespace's annotations from the API, whole (an absent namespace: empty). Values
  // the agent does not understand are left out and reported; the rest applies.
  Outcome set_namespace(const std::string& ns, const policy::Labels& annotations,
                        const std::string& source = "kubernetes");
  // The annotations of every namespace (a complete list); `sources` by namespace.
  Outcome replace_namespaces(const std::map<std::string, policy::Labels>& all,
                             const std::map<std::string, std::string>& sources = {});
  // The pods of this node (a complete list with replace_pods).
  void put_pod(const Pod& pod);
  void remove_pod(const std::string& uid);
  void replace_pods(const std::vector<Pod>& pods);
  [[nodiscard]] size_t pod_count() const;
  // A warning for every rule of `p` the node's enforcer does not enforce (issue 9): no rule
  // is reported as enforced when it is not.
  void coverage_warnings(const policy::Policy& p, std::vector<std::string>& out) const;

  void upsert_workload(const workload::Workload& w);
  void remove_workload(const std::string& id);
  // Tries again to enforce the workloads whose last change failed; returns how many still fail.
  size_t retry_failed();

  [[nodiscard]] std::vector<PolicyView> policies(const std::string& ns) const;
  [[nodiscard]] std::vector<WorkloadView> workloads(const std::string& ns) const;
  [[nodiscard]] const AgentConfig& config() const { return config_; }
  [[nodiscard]] enforce::Enforcer* enforcer() const { return enforcer_; }
  // Told the running workloads and their visibility whenever they change (called with the
  // agent's lock held: it must not call back into the agent).
  void set_watch_sink(std::function<void(const std::vector<WatchedWorkload>&)> sink);
  // What kubearmor-visibility asks to see of `w` (agent/activity.h bits).
  [[nodiscard]] unsigned visibility(const workload::Workload& w) const;
  // Where the agent's own alerts go (a workload it cannot enforce, a policy change); may
  // stay unset.
  void set_alert_sink(enforce::AlertSink sink) { alert_sink_ = std::move(sink); }
  // Where every policy and namespace-annotation change is recorded (agent/history.h); may
  // stay unset.
  void set_history(History* history) { history_ = history; }
  // The change log (entries about namespace `ns`, or all), and its check against the state.
  [[nodiscard]] Result<std::vector<HistoryEntry>> history(const std::string& ns) const;
  [[nodiscard]] VerifyReport verify() const;
  // `corral verify --accept`: records every stored file that does not match the change log
  // (added, edited or removed behind the agent's back, or stored before the log began) as a
  // severity-10 entry by `who`, so that the log describes the state again; returns how many.
  // A broken chain stays broken: the entries already written are not rewritten.
  Result<size_t> accept(const std::string& who);

private:
  // Hands the watch sink the running workloads (after any change to them).
  void watch_changed_locked();
  unsigned visibility_locked(const workload::Workload& w) const;
  struct Entry {
    workload::Workload raw; // as the workload source reported it
    workload::Workload w;   // with its pod's identity (identify_locked)
    // The rules in force (enforced), or the ones it should have when nothing is enforced.
    std::shared_ptr<const policy::RuleSet> rules;
    // Newer rules the enforcer refused while `rules` stay in force (all or nothing: a
    // workload never runs on half of a change); null when there are none.
    std::shared_ptr<const policy::RuleSet> wanted;
    bool enforced = false;
    std::string enforce_error; // why the enforcer refused the last change, when it did
  };
  struct Applied {
    policy::PolicyPtr policy;
    std::string applied;
    std::string source = "local";
  };
  // Recompiles and re-enforces workloads; returns the RuleSets' warnings. Caller holds mu_.
  // `failed` (may be null) gets each workload the enforcer refused.
  std::vector<std::string> reconcile_locked(const std::string& only_namespace = "",
                                            std::vector<std::string>* failed = nullptr);
  std::vector<std::string> reconcile_one_locked(Entry& e, std::vector<std::string>* failed,
                                                bool retry = false);
  std::vector<policy::PolicyPtr> policy_list_locked() const;
  // The workload as policies see it: a pod's container takes the pod's labels and
  // annotations (from the API, else from its sandbox container's labels).
  [[nodiscard]] workload::Workload identify_locked(const workload::Workload& raw) const;
  // Re-identifies and reconciles the containers of pod `uid`.
  void reidentify_locked(const std::string& uid);
  Outcome put_namespace_locked(const std::string& ns, const policy::Labels& annotations,
                               const std::string& source);
  void identity_changed_locked(const Entry& e, const policy::RuleSet* before);
  // Each workload's latest rules (by id), to tell what a change widened.
  using Snapshot = std::map<std::string, std::shared_ptr<const policy::RuleSet>>;
  [[nodiscard]] Snapshot snapshot_locked() const;
  // Changes made together, after their reconcile: a PolicyChange alert and a change-log
  // entry each.
  void record_locked(std::vector<PolicyChange> changes, const Snapshot& before,
                     const std::vector<std::string>& warnings);
  void record_one_locked(PolicyChange c, const std::vector<std::string>& warnings);
  void record_policy_locked(const policy::Policy* before, const policy::Policy* after,
                            const std::string& source, std::vector<PolicyChange>& out) const;

  [[nodiscard]] std::string enforcement_of(const Entry& e) const;

  void alert_not_enforced(const workload::Workload& w, bool stale, const std::string& reason) const;

  AgentConfig config_;
  StateStore& store_;
  enforce::Enforcer* enforcer_; // null with --enforcer none
  std::function<void(const std::string&)> log_;
  enforce::AlertSink alert_sink_;
  History* history_ = nullptr;
  std::function<void(const std::vector<WatchedWorkload>&)> watch_sink_;
  mutable std::mutex mu_;
  std::map<std::string, Applied> policies_;          // by Policy::key()
  std::map<std::string, policy::Labels> namespaces_; // annotations
  std::map<std::string, Entry> workloads_;           // by container id
  bool kubernetes_ = false;
  std::function<KubernetesStatus()> kubernetes_status_;
  std::function<void(std::map<std::string, std::string>&)> extra_status_;
  std::map<std::string, Pod> pods_;                     // by uid (Kubernetes mode)
  std::map<std::string, workload::Workload> sandboxes_; // pause containers, by id
};

} // namespace corral::agent
