#include "agent/agent.h"

#include <algorithm>

#include "agent/activity.h"
#include "agent/canonical_path.h"
#include "core/strings.h"
#include "enforce/fanotify/workload_facts.h"
#include "events/format.h"

namespace corral::agent {

uint64_t enforced_workloads(uint64_t hooked, const std::vector<WorkloadView>& workloads) {
  const auto not_enforced = static_cast<uint64_t>(
      std::count_if(workloads.begin(), workloads.end(), [](const WorkloadView& v) {
        return v.not_enforced() && v.enforcer != "none";
      }));
  return hooked > not_enforced ? hooked - not_enforced : 0;
}
namespace {

std::string label(const policy::Policy& p) {
  return std::string(to_string(p.kind)) + "/" + p.name;
}

policy::ParseResult parse_all(const std::vector<std::pair<std::string, std::string>>& files) {
  policy::ParseResult all;
  for (const auto& [name, text] : files) {
    auto one = policy::parse_policies(text, name);
    all.policies.insert(all.policies.end(), one.policies.begin(), one.policies.end());
    all.diagnostics.insert(all.diagnostics.end(), one.diagnostics.begin(), one.diagnostics.end());
  }
  return all;
}

Error invalid_input(const policy::ParseResult& parsed) {
  std::string lines;
  for (const auto& d : parsed.diagnostics) lines += d.to_string() + "\n";
  return Error{"invalid policy input, nothing was applied:\n" + lines,
               "fix every error above; `corral validate -f FILE` checks files offline"};
}

// The annotations `corral annotate` understands, and their valid values.
Result<void> check_annotation(const std::string& key, const std::string& value) {
  const std::string v = to_lower(value);
  if (key.ends_with("-posture") && key.starts_with("kubearmor-")) {
    if (key != "kubearmor-file-posture" && key != "kubearmor-network-posture" &&
        key != "kubearmor-capabilities-posture") {
      return Error{"unknown posture annotation " + key,
                   "kubearmor-file-posture, kubearmor-network-posture or "
                   "kubearmor-capabilities-posture"};
    }
    if (v != "audit" && v != "block") {
      return Error{"invalid value " + key + "=" + value, "audit or block"};
    }
  } else if (key == "kubearmor-policy" && v != "enabled" && v != "audited" && v != "disabled") {
    return Error{"invalid value kubearmor-policy=" + value, "enabled, audited or disabled"};
  } else if (key == policy::kImageOnlyAnnotation && v != "true" && v != "false") {
    return Error{"invalid value " + key + "=" + value,
                 "true (default: an allowed path runs only the file the image shipped) or false"};
  } else if (key == "kubearmor-visibility") {
    for (const auto& item : split(v, ',')) {
      const auto t = trim(item);
      if (t != "process" && t != "file" && t != "network" && t != "capabilities" && t != "none") {
        return Error{"invalid value kubearmor-visibility=" + value,
                     "a comma list of process, file, network, capabilities, or none"};
      }
    }
  }
  return {};
}

// The keys of a namespace's annotations that the agent reads; the others are not its business.
bool ours(const std::string& key) {
  return key.starts_with("kubearmor-") || key.starts_with("corral.io/");
}

std::string label_of(const policy::Labels& labels, const char* key) {
  const auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

// A pod's labels as its sandbox container carries them: the CRI plugin copies the pod's
// labels there and adds its own (io.kubernetes.*, io.cri-containerd.*), which are not the pod's.
policy::Labels pod_labels_of_sandbox(const policy::Labels& sandbox) {
  policy::Labels out;
  for (const auto& [k, v] : sandbox) {
    if (!k.starts_with("io.kubernetes.") && !k.starts_with("io.cri-containerd.")) out[k] = v;
  }
  return out;
}

} // namespace

Agent::Agent(AgentConfig config, StateStore& store, enforce::Enforcer* enforcer,
             std::function<void(const std::string&)> log)
    : config_(std::move(config)), store_(store), enforcer_(enforcer), log_(std::move(log)) {}

Result<void> Agent::restore() {
  auto state = store_.load();
  if (!state) return state.error();
  std::lock_guard lock(mu_);
  namespaces_ = state->namespaces;
  for (const auto& [file, text] : state->policies) {
    auto parsed = policy::parse_policies(text, file);
    if (!parsed.ok()) return invalid_input(parsed);
    const std::string key =
        text.starts_with(kKeyPrefix)
            ? text.substr(kKeyPrefix.size(), text.find('\n') - kKeyPrefix.size())
            : std::string();
    for (auto& p : parsed.policies) {
      if (key.empty() || p->key() == key)
        policies_[p->key()] = Applied{p, events::rfc3339_micros(events::now_micros())};
    }
  }
  if (kubernetes_) {
    for (auto& [key, a] : policies_) a.source = "kubernetes (cached; the API has not answered yet)";
  }
  log_("restored " + std::to_string(policies_.size()) + " policies and " +
       std::to_string(namespaces_.size()) + " namespace annotations");
  reconcile_locked();
  return {};
}

Result<Agent::Outcome> Agent::apply(const std::vector<std::pair<std::string, std::string>>& files,
                                    const std::string& who) {
  const auto parsed = parse_all(files);
  if (!parsed.ok()) return invalid_input(parsed);
  Outcome out;
  for (const auto& d : parsed.diagnostics) out.warnings.push_back(d.to_string());
  std::lock_guard lock(mu_);
  std::vector<policy::PolicyPtr> written;
  for (const auto& p : parsed.policies) {
    if (auto r = store_.put_policy(*p); !r) {
      // Undo the files already written so that the state matches what is enforced.
      for (const auto& w : written) {
        const auto prev = policies_.find(w->key());
        (void)(prev != policies_.end() ? store_.put_policy(*prev->second.policy)
                                       : store_.delete_policy(*w));
      }
      return Error{"store policy " + p->key() + ": " + r.error().to_string() +
                       "; nothing was applied",
                   "check the agent's --state-dir"};
    }
    written.push_back(p);
  }
  const std::string now = events::rfc3339_micros(events::now_micros());
  const Snapshot before = snapshot_locked();
  std::vector<PolicyChange> changes;
  for (const auto& p : parsed.policies) {
    const auto prev = policies_.find(p->key());
    const policy::Policy* old = prev != policies_.end() ? prev->second.policy.get() : nullptr;
    if (old != nullptr && old->source == p->source) { // as kubectl: nothing to record
      out.lines.push_back(label(*p) + " unchanged");
      continue;
    }
    record_policy_locked(old, p.get(), who, changes);
    policies_[p->key()] = Applied{p, now};
    out.lines.push_back(label(*p) + " configured");
  }
  auto warnings = reconcile_locked("", &out.failed);
  record_locked(std::move(changes), before, warnings);
  out.warnings.insert(out.warnings.end(), warnings.begin(), warnings.end());
  for (const auto& p : parsed.policies) coverage_warnings(*p, out.warnings);
  for (const auto& p : parsed.policies) {
    bool any = false;
    for (const auto& [id, e] : workloads_) any = any || policy::selects(*p, e.w.policy_view());
    if (!any) out.warnings.push_back(label(*p) + " selects no running workload now");
  }
  return out;
}

Result<std::vector<std::string>>
Agent::keys_of(const std::vector<std::pair<std::string, std::string>>& files) const {
  const auto parsed = parse_all(files);
  if (!parsed.ok()) return invalid_input(parsed);
  std::vector<std::string> keys;
  for (const auto& p : parsed.policies) keys.push_back(p->key());
  return keys;
}

Result<Agent::Outcome> Agent::remove(const std::vector<std::string>& keys, const std::string& who) {
  std::lock_guard lock(mu_);
  for (const auto& k : keys) {
    if (policies_.count(k) == 0) {
      return Error{"policy " + k + " is not applied; nothing was deleted",
                   "`corral get policies` lists the applied policies"};
    }
  }
  Outcome out;
  const Snapshot before = snapshot_locked();
  std::vector<PolicyChange> changes;
  for (const auto& k : keys) {
    const auto& p = *policies_.at(k).policy;
    if (auto r = store_.delete_policy(p); !r) return r.error();
    out.lines.push_back(label(p) + " deleted");
    record_policy_locked(&p, nullptr, who, changes);
    policies_.erase(k);
  }
  out.warnings = reconcile_locked("", &out.failed);
  record_locked(std::move(changes), before, out.warnings);
  return out;
}

Result<Agent::Outcome> Agent::annotate(const std::string& ns, const policy::Labels& set,
                                       const std::vector<std::string>& remove, bool overwrite,
                                       const std::string& who) {
  std::lock_guard lock(mu_);
  const auto known = namespaces_.find(ns);
  const policy::Labels previous = known == namespaces_.end() ? policy::Labels{} : known->second;
  policy::Labels next = previous;
  for (const auto& [k, v] : set) {
    if (auto r = check_annotation(k, v); !r) return r.error();
    const auto it = next.find(k);
    if (it != next.end() && it->second != v && !overwrite) {
      return Error{"namespace " + ns + " already has " + k + "=" + it->second +
                       "; nothing was changed",
                   "add --overwrite to replace it"};
    }
    next[k] = v;
  }
  for (const auto& k : remove) next.erase(k);
  Outcome out;
  if (next == previous) {
    out.lines.push_back("namespace/" + ns + " unchanged");
    return out;
  }
  if (auto r = store_.put_namespace(ns, next); !r) return r.error();
  const Snapshot before = snapshot_locked();
  if (next.empty())
    namespaces_.erase(ns);
  else
    namespaces_[ns] = next;
  out.lines.push_back("namespace/" + ns + " annotated");
  out.warnings = reconcile_locked(ns, &out.failed);
  auto change = describe_namespace_change(ns, previous, next);
  change.source = who;
  record_locked({std::move(change)}, before, out.warnings);
  const bool any = std::any_of(workloads_.begin(), workloads_.end(),
                               [&](const auto& kv) { return kv.second.w.namespace_name == ns; });
  if (!any) out.warnings.push_back("no workload runs in namespace " + ns + " now");
  return out;
}

policy::Labels Agent::annotations(const std::string& ns) const {
  std::lock_guard lock(mu_);
  const auto it = namespaces_.find(ns);
  return it == namespaces_.end() ? policy::Labels{} : it->second;
}

void Agent::upsert_workload(const workload::Workload& w) {
  std::lock_guard lock(mu_);
  // A pod's sandbox (pause) container is never a workload; its labels are the pod's until
  // the API tells them.
  if (label_of(w.labels, kCriKindLabel) == "sandbox") {
    sandboxes_[w.id] = w;
    reidentify_locked(label_of(w.labels, kPodUidLabel));
    return;
  }
  Entry& e = workloads_[w.id];
  const bool moved = e.w.init_pid != w.init_pid;
  e.raw = w;
  e.w = identify_locked(w);
  if (moved) { // a new task: enforce afresh
    e.rules.reset();
    e.wanted.reset();
    e.enforced = false;
  }
  std::vector<std::string> failed; // logged and alerted as they happen
  for (const auto& m : reconcile_one_locked(e, &failed)) log_("workload " + w.id + ": " + m);
  // Only its first enforcement may judge what ran since the runtime created it; a policy
  // applied later judges new execs only.
  e.w.fresh = false;
  watch_changed_locked();
}

size_t Agent::retry_failed() {
  std::lock_guard lock(mu_);
  size_t failing = 0;
  for (auto& [id, e] : workloads_) {
    if (e.enforce_error.empty()) continue;
    std::vector<std::string> failed;
    for (const auto& m : reconcile_one_locked(e, &failed, true)) log_("workload " + id + ": " + m);
    failing += failed.size();
  }
  return failing;
}

void Agent::remove_workload(const std::string& id) {
  std::lock_guard lock(mu_);
  if (sandboxes_.erase(id) > 0) return;
  const auto it = workloads_.find(id);
  if (it == workloads_.end()) return;
  // Also when not (fully) enforced: a backend may hold part of a first enforcement.
  if (enforcer_ != nullptr) enforcer_->release(id);
  workloads_.erase(it);
  watch_changed_locked();
}

workload::Workload Agent::identify_locked(const workload::Workload& raw) const {
  const std::string uid = label_of(raw.labels, kPodUidLabel);
  if (uid.empty()) return raw;
  workload::Workload w = raw;
  if (const auto p = pods_.find(uid); p != pods_.end()) {
    w.labels = p->second.labels;
    w.annotations = p->second.annotations;
    w.pod = p->second.name;
    w.namespace_name = p->second.namespace_name;
    return w;
  }
  for (const auto& [id, s] : sandboxes_) {
    if (label_of(s.labels, kPodUidLabel) == uid) {
      w.labels = pod_labels_of_sandbox(s.labels);
      return w;
    }
  }
  return w; // neither known yet: the container's own labels
}

void Agent::reidentify_locked(const std::string& uid) {
  if (uid.empty()) return;
  for (auto& [id, e] : workloads_) {
    if (label_of(e.raw.labels, kPodUidLabel) != uid) continue;
    const bool fresh = e.w.fresh;
    const auto before = e.wanted ? e.wanted : e.rules;
    e.w = identify_locked(e.raw);
    e.w.fresh = fresh;
    for (const auto& m : reconcile_one_locked(e, nullptr)) log_("workload " + id + ": " + m);
    identity_changed_locked(e, before.get());
  }
  watch_changed_locked();
}

void Agent::set_kubernetes(bool on) {
  std::lock_guard lock(mu_);
  kubernetes_ = on;
}

bool Agent::kubernetes() const {
  std::lock_guard lock(mu_);
  return kubernetes_;
}

void Agent::set_kubernetes_status(std::function<KubernetesStatus()> status) {
  std::lock_guard lock(mu_);
  kubernetes_status_ = std::move(status);
}

void Agent::set_extra_status(std::function<void(std::map<std::string, std::string>&)> extra) {
  std::lock_guard lock(mu_);
  extra_status_ = std::move(extra);
}

void Agent::extra_status(std::map<std::string, std::string>& out) const {
  std::function<void(std::map<std::string, std::string>&)> f;
  {
    std::lock_guard lock(mu_);
    f = extra_status_;
  }
  if (f) f(out);
}

std::optional<KubernetesStatus> Agent::kubernetes_status() const {
  std::function<KubernetesStatus()> f;
  {
    std::lock_guard lock(mu_);
    if (!kubernetes_) return std::nullopt;
    f = kubernetes_status_;
  }
  return f ? f() : KubernetesStatus{"connecting", "", "", "", "", 0, 0, 0};
}

Agent::Outcome Agent::sync_policies(const std::vector<policy::PolicyPtr>& put,
                                    const std::map<std::string, std::string>& sources,
                                    std::optional<policy::Kind> replace_kind,
                                    const std::set<std::string>& keep) {
  std::lock_guard lock(mu_);
  Outcome out;
  const std::string now = events::rfc3339_micros(events::now_micros());
  const Snapshot before = snapshot_locked();
  std::vector<PolicyChange> changes;
  std::set<std::string> listed = keep;
  for (const auto& p : put) {
    listed.insert(p->key());
    const auto src = sources.find(p->key());
    const std::string source = src != sources.end() ? src->second : "kubernetes";
    auto it = policies_.find(p->key());
    // The same text again (a relist, a change of metadata only): the policy in force stays,
    // and with it every workload's compiled rules and kernel cache.
    if (it != policies_.end() && it->second.policy->source == p->source) {
      if (src != sources.end()) it->second.source = src->second;
      continue;
    }
    if (auto r = store_.put_policy(*p); !r)
      log_("cache policy " + p->key() + ": " + r.error().to_string());
    record_policy_locked(it != policies_.end() ? it->second.policy.get() : nullptr, p.get(), source,
                         changes);
    policies_[p->key()] = Applied{p, now, source};
    out.lines.push_back(label(*p) + " configured");
  }
  if (replace_kind) {
    for (auto it = policies_.begin(); it != policies_.end();) {
      const auto& p = *it->second.policy;
      if (p.kind != *replace_kind || listed.count(it->first) > 0) {
        ++it;
        continue;
      }
      if (auto r = store_.delete_policy(p); !r)
        log_("uncache policy " + it->first + ": " + r.error().to_string());
      out.lines.push_back(label(p) + " deleted");
      record_policy_locked(&p, nullptr, "kubernetes: no longer listed by the API", changes);
      it = policies_.erase(it);
    }
  }
  if (changes.empty()) return out;
  out.warnings = reconcile_locked("", &out.failed);
  record_locked(std::move(changes), before, out.warnings);
  return out;
}

Agent::Outcome Agent::remove_policy(const std::string& key, const std::string& source) {
  std::lock_guard lock(mu_);
  Outcome out;
  const auto it = policies_.find(key);
  if (it == policies_.end()) return out;
  if (auto r = store_.delete_policy(*it->second.policy); !r)
    log_("uncache policy " + key + ": " + r.error().to_string());
  out.lines.push_back(label(*it->second.policy) + " deleted");
  const Snapshot before = snapshot_locked();
  std::vector<PolicyChange> changes;
  record_policy_locked(it->second.policy.get(), nullptr, source, changes);
  policies_.erase(it);
  out.warnings = reconcile_locked("", &out.failed);
  record_locked(std::move(changes), before, out.warnings);
  return out;
}

Agent::Outcome Agent::put_namespace_locked(const std::string& ns, const policy::Labels& annotations,
                                           const std::string& source) {
  Outcome out;
  policy::Labels next;
  for (const auto& [k, v] : annotations) {
    if (!ours(k)) continue;
    if (auto r = check_annotation(k, v); !r) {
      out.warnings.push_back("namespace " + ns + ": " + r.error().to_string() + " (left out)");
      continue;
    }
    next[k] = v;
  }
  const auto it = namespaces_.find(ns);
  const policy::Labels previous = it == namespaces_.end() ? policy::Labels{} : it->second;
  if (previous == next) return out;
  if (auto r = store_.put_namespace(ns, next); !r)
    log_("cache namespace " + ns + ": " + r.error().to_string());
  const Snapshot before = snapshot_locked();
  if (next.empty())
    namespaces_.erase(ns);
  else
    namespaces_[ns] = next;
  out.lines.push_back("namespace/" + ns + " annotated");
  auto w = reconcile_locked(ns, &out.failed);
  out.warnings.insert(out.warnings.end(), w.begin(), w.end());
  auto change = describe_namespace_change(ns, previous, next);
  change.source = source;
  record_locked({std::move(change)}, before, w);
  return out;
}

Agent::Outcome Agent::set_namespace(const std::string& ns, const policy::Labels& annotations,
                                    const std::string& source) {
  std::lock_guard lock(mu_);
  return put_namespace_locked(ns, annotations, source);
}

Agent::Outcome Agent::replace_namespaces(const std::map<std::string, policy::Labels>& all,
                                         const std::map<std::string, std::string>& sources) {
  std::lock_guard lock(mu_);
  Outcome out;
  auto merge = [&out](Outcome&& o) {
    for (auto v : {&Outcome::lines, &Outcome::warnings, &Outcome::failed})
      (out.*v).insert((out.*v).end(), (o.*v).begin(), (o.*v).end());
  };
  auto source = [&sources](const std::string& ns) {
    const auto it = sources.find(ns);
    return it != sources.end() ? it->second
                               : std::string("kubernetes: no longer listed by the API");
  };
  std::vector<std::string> gone;
  for (const auto& [ns, a] : namespaces_) {
    if (all.count(ns) == 0) gone.push_back(ns);
  }
  for (const auto& ns : gone) merge(put_namespace_locked(ns, {}, source(ns)));
  for (const auto& [ns, a] : all) merge(put_namespace_locked(ns, a, source(ns)));
  return out;
}

void Agent::put_pod(const Pod& pod) {
  std::lock_guard lock(mu_);
  const auto it = pods_.find(pod.uid);
  if (it != pods_.end() && it->second == pod) return;
  pods_[pod.uid] = pod;
  reidentify_locked(pod.uid);
}

void Agent::remove_pod(const std::string& uid) {
  std::lock_guard lock(mu_);
  if (pods_.erase(uid) > 0) reidentify_locked(uid);
}

void Agent::replace_pods(const std::vector<Pod>& pods) {
  std::lock_guard lock(mu_);
  std::map<std::string, Pod> next;
  for (const auto& p : pods) next[p.uid] = p;
  std::vector<std::string> changed;
  for (const auto& [uid, p] : pods_) {
    const auto n = next.find(uid);
    if (n == next.end() || !(n->second == p)) changed.push_back(uid);
  }
  for (const auto& [uid, p] : next) {
    if (pods_.count(uid) == 0) changed.push_back(uid);
  }
  pods_ = std::move(next);
  for (const auto& uid : changed) reidentify_locked(uid);
}

size_t Agent::pod_count() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

std::vector<policy::PolicyPtr> Agent::policy_list_locked() const {
  std::vector<policy::PolicyPtr> out;
  for (const auto& [key, a] : policies_) out.push_back(a.policy);
  return out;
}

std::vector<std::string> Agent::reconcile_locked(const std::string& only_namespace,
                                                 std::vector<std::string>* failed) {
  std::vector<std::string> warnings;
  for (auto& [id, e] : workloads_) {
    if (!only_namespace.empty() && e.w.namespace_name != only_namespace) continue;
    for (auto& m : reconcile_one_locked(e, failed)) { // once, though many workloads say it
      if (std::find(warnings.begin(), warnings.end(), m) == warnings.end())
        warnings.push_back(std::move(m));
    }
  }
  watch_changed_locked();
  return warnings;
}

void Agent::set_watch_sink(std::function<void(const std::vector<WatchedWorkload>&)> sink) {
  std::lock_guard lock(mu_);
  watch_sink_ = std::move(sink);
  watch_changed_locked();
}

void Agent::watch_changed_locked() {
  if (!watch_sink_) return;
  std::vector<WatchedWorkload> out;
  for (const auto& [id, e] : workloads_) {
    if (e.w.init_pid != 0) out.push_back(WatchedWorkload{e.w, visibility_locked(e.w)});
  }
  watch_sink_(out);
}

unsigned Agent::visibility(const workload::Workload& w) const {
  std::lock_guard lock(mu_);
  return visibility_locked(w);
}

unsigned Agent::visibility_locked(const workload::Workload& w) const {
  // The pod's annotation, else the namespace's, else the agent's default (invalid values
  // were refused or reported when they were set).
  unsigned mask = config_.default_visibility;
  const auto ns = namespaces_.find(w.namespace_name);
  const policy::Labels* ns_annotations = ns == namespaces_.end() ? nullptr : &ns->second;
  for (const policy::Labels* a : {ns_annotations, &w.annotations}) {
    if (a == nullptr) continue;
    if (const auto v = a->find("kubearmor-visibility"); v != a->end()) {
      if (const auto m = parse_visibility(v->second)) mask = *m;
    }
  }
  return mask;
}

std::vector<std::string> Agent::reconcile_one_locked(Entry& e, std::vector<std::string>* failed,
                                                     bool retry) {
  std::vector<std::string> warnings;
  std::vector<policy::PolicyPtr> selected;
  for (const auto& [key, a] : policies_) {
    if (policy::selects(*a.policy, e.w.policy_view())) selected.push_back(a.policy);
  }
  const auto ns = namespaces_.find(e.w.namespace_name);
  const auto settings = policy::resolve_settings(
      config_.default_postures, ns == namespaces_.end() ? policy::Labels{} : ns->second,
      policy::locked_by_any(selected, e.w.policy_view()) ? policy::Labels{} : e.w.annotations,
      &warnings);
  // Unchanged selection and settings: keep the enforcement (and its kernel cache) as is;
  // a change that failed is tried again only when asked to.
  const auto& latest = e.wanted ? e.wanted : e.rules;
  if (latest && latest->policies() == selected && latest->settings() == settings &&
      (e.enforce_error.empty() || !retry))
    return warnings;
  const policy::PathResolver resolve =
      e.w.root_path.empty()
          ? policy::PathResolver()
          : caching_resolver(e.w.root_path,
                             settings.image_only
                                 ? enforce::fanotify::process_start_ns(e.w.init_pid).value_or(0)
                                 : 0);
  auto next = policy::compile(selected, e.w.policy_view(), settings, resolve);
  warnings.insert(warnings.end(), next->warnings().begin(), next->warnings().end());
  if (enforcer_ == nullptr || e.w.init_pid == 0 || next->rule_count() == 0) {
    if (enforcer_ != nullptr && (e.enforced || !e.enforce_error.empty()))
      enforcer_->release(e.w.id);
    e.enforced = false;
    e.rules = std::move(next);
    e.wanted.reset();
    e.enforce_error.clear();
    return warnings;
  }
  if (auto r = enforcer_->enforce(e.w, next); r) {
    if (!e.enforce_error.empty()) log_("workload " + e.w.name + " is enforced again");
    e.rules = std::move(next);
    e.wanted.reset();
    e.enforce_error.clear();
    e.enforced = true;
    return warnings;
  } else {
    const bool first = e.enforce_error.empty();
    e.enforce_error = r.error().message; // the hint goes to the log and the alert
    std::string msg;
    if (e.enforced) { // the old rules stay in force, whole
      e.wanted = std::move(next);
      msg = "cannot update " + e.w.name + ", it keeps its previous rules: " + e.enforce_error;
    } else {
      e.rules = std::move(next);
      msg = "cannot enforce on " + e.w.name + ": " + e.enforce_error;
    }
    // The caller reports what failed as such; others (a workload event) see a warning.
    if (failed != nullptr)
      failed->push_back(e.w.name + " (" + e.w.id + "): " + e.enforce_error);
    else
      warnings.push_back(msg);
    if (first || !retry) {
      log_(msg + (r.error().hint.empty() ? "" : " (hint: " + r.error().hint + ")"));
      alert_not_enforced(e.w, e.enforced, r.error().to_string());
    }
  }
  return warnings;
}

void Agent::coverage_warnings(const policy::Policy& p, std::vector<std::string>& out) const {
  for (const auto& r : p.rules) {
    const auto c = enforcer_ != nullptr
                       ? enforcer_->coverage(r.category)
                       : enforce::Coverage{enforce::Coverage::Level::Unsupported, "",
                                           "the agent runs with --enforcer none"};
    if (c.level == enforce::Coverage::Level::Enforced) continue;
    out.push_back(label(p) + " " + r.origin.field + " (" + std::string(to_string(r.action)) + " " +
                  r.value + "): NOT ENFORCED on this node, " +
                  std::string(enforce::to_string(c.level)) + (c.how.empty() ? "" : " by " + c.how) +
                  (c.reason.empty() ? "" : ": " + c.reason));
  }
}

std::string Agent::enforcement_of(const Entry& e) const {
  if (!e.enforce_error.empty() && !e.enforced) return "NOT ENFORCED: " + e.enforce_error;
  if (!e.enforce_error.empty()) return "STALE RULES (update failed: " + e.enforce_error + ")";
  if (!e.enforced || enforcer_ == nullptr) return "-";
  const auto proof = enforcer_->enforcement(e.w.id);
  switch (proof.state) {
  case enforce::Enforcement::State::Enforced: return "enforced";
  case enforce::Enforcement::State::Proving: return "proving";
  case enforce::Enforcement::State::NotEnforced: return "NOT ENFORCED: " + proof.reason;
  case enforce::Enforcement::State::Unknown: break;
  }
  return "unproven";
}

void Agent::alert_not_enforced(const workload::Workload& w, bool stale,
                               const std::string& reason) const {
  if (!alert_sink_) return;
  events::Alert a = agent_alert({config_.cluster_name, config_.host_name, 0});
  a.namespace_name = w.namespace_name;
  a.pod_name = w.pod;
  a.container_id = w.id;
  a.container_name = w.name;
  a.container_image = w.image;
  a.host_pid = w.init_pid;
  a.policy_name = "corral-enforcement-proof";
  a.severity = "10";
  a.tags = "CORRAL_NOT_ENFORCED";
  a.atags = {"CORRAL_NOT_ENFORCED"};
  a.message =
      stale ? "workload keeps its previous rules, its policies' change is NOT ENFORCED: " + reason
            : "workload NOT ENFORCED: " + reason;
  a.type = w.runtime == "host" ? "MatchedHostPolicy" : "MatchedPolicy";
  a.operation = "Process";
  a.resource = "/";
  a.enforcer = enforcer_ != nullptr ? std::string(enforcer_->name()) : "none";
  a.action = "Block";
  a.result = "NOT ENFORCED";
  alert_sink_(std::move(a));
}

std::vector<PolicyView> Agent::policies(const std::string& ns) const {
  std::lock_guard lock(mu_);
  std::vector<PolicyView> out;
  for (const auto& [key, a] : policies_) {
    if (!ns.empty() && a.policy->kind == policy::Kind::Policy && a.policy->namespace_name != ns)
      continue;
    PolicyView v{a.policy, {}, a.applied, a.source};
    for (const auto& [id, e] : workloads_) {
      if (policy::selects(*a.policy, e.w.policy_view())) v.workloads.push_back(id);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<WorkloadView> Agent::workloads(const std::string& ns) const {
  std::lock_guard lock(mu_);
  std::vector<WorkloadView> out;
  for (const auto& [id, e] : workloads_) {
    if (!ns.empty() && e.w.namespace_name != ns) continue;
    WorkloadView v{e.w, {}, {}, 0, "none", "-", "", {}};
    if (e.rules) {
      for (const auto& p : e.rules->policies()) v.policies.push_back(p->name);
      v.settings = e.rules->settings();
      v.rules = e.rules->rule_count();
      if (e.enforced) v.fingerprint = e.rules->fingerprint();
    }
    if (e.enforced && enforcer_ != nullptr) v.enforcer = std::string(enforcer_->name());
    if (e.rules) {
      for (const auto c : {policy::Category::Process, policy::Category::File,
                           policy::Category::Network, policy::Category::Capabilities}) {
        if (e.rules->traits(c).rules == 0) continue;
        const auto level = enforcer_ != nullptr && e.enforced
                               ? enforcer_->coverage(c).level
                               : enforce::Coverage::Level::Unsupported;
        v.sections.push_back(std::string(section_name(c)) + "=" +
                             std::string(e.enforced ? enforce::to_string(level) : "not enforced"));
      }
    }
    v.enforcement = enforcement_of(e);
    out.push_back(std::move(v));
  }
  return out;
}

} // namespace corral::agent
