// The Agent's record of changes (issue 12): each policy or namespace-annotation change as a
// PolicyChange alert and a change-log entry, a pod change that drops a lock, and the log's
// listing, check and acceptance. Members of Agent (agent/agent.h), called with mu_ held
// where their names end in _locked.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "core/strings.h"
#include "events/format.h"

namespace corral::agent {

// A pod's labels or annotations changed (no policy did): alerted like a policy change when
// it takes a locked policy off the workload or lets it run what it could not. Not in the
// change log, which records the agent's stored state only.
void Agent::identity_changed_locked(const Entry& e, const policy::RuleSet* before) {
  const auto& now = e.wanted ? e.wanted : e.rules;
  if (before == nullptr || before == now.get() || !alert_sink_) return;
  std::vector<std::string> lost;
  for (const auto& p : before->policies()) {
    const bool kept = now && std::find(now->policies().begin(), now->policies().end(), p) !=
                                 now->policies().end();
    if (p->locked && !kept) lost.push_back(p->name);
  }
  PolicyChange c;
  c.kind = "Pod";
  c.namespace_name = e.w.namespace_name;
  c.name = e.w.pod.empty() ? e.w.name : e.w.pod;
  c.action = "Modified";
  c.source = "kubernetes: the pod's labels or annotations changed";
  c.lock_changed = !lost.empty();
  c.widens = widens_exec(before, now.get());
  if (!c.lock_changed && !c.widens) return;
  c.summary = "container " + e.w.name +
              (lost.empty() ? "" : ": no longer selected by the locked policy " + join(lost, ", "));
  log_("policy change: " + c.object() + " (severity 10): " + c.summary);
  alert_sink_(change_alert(c, {config_.cluster_name, config_.host_name, 0}));
}

Agent::Snapshot Agent::snapshot_locked() const {
  Snapshot out;
  for (const auto& [id, e] : workloads_) out[id] = e.wanted ? e.wanted : e.rules;
  return out;
}

void Agent::record_policy_locked(const policy::Policy* before, const policy::Policy* after,
                                 const std::string& source, std::vector<PolicyChange>& out) const {
  PolicyChange c = describe_policy_change(before, after);
  c.source = source;
  const policy::Policy& p = after != nullptr ? *after : *before;
  c.file = StateStore::policy_file(p);
  if (after != nullptr) c.digest = sha256_hex(StateStore::policy_text(*after));
  out.push_back(std::move(c));
}

void Agent::record_locked(std::vector<PolicyChange> changes, const Snapshot& before,
                          const std::vector<std::string>& warnings) {
  // Whether some workload may now run what it could not: once for the changes made together.
  bool widens = false;
  for (const auto& [id, e] : workloads_) {
    const auto was = before.find(id);
    const auto& now = e.wanted ? e.wanted : e.rules;
    if (was != before.end() && was->second != now && widens_exec(was->second.get(), now.get())) {
      widens = true;
      break;
    }
  }
  for (auto& c : changes) {
    c.widens = widens;
    record_one_locked(std::move(c), warnings);
  }
}

void Agent::record_one_locked(PolicyChange c, const std::vector<std::string>& warnings) {
  // The rules a lock ignores, reported with the change that brought them or the lock.
  std::vector<std::string> ignored;
  for (const auto& w : warnings) {
    if (auto rule = policy::lock_report_about(w, c.kind + "/" + c.name, c.name); !rule.empty())
      ignored.push_back(std::move(rule));
  }
  if (!ignored.empty()) c.summary += "; ignored by a lock: " + join(ignored, ", ");
  if (c.kind == "Namespace") {
    c.file = StateStore::namespace_file(c.name);
    const auto it = namespaces_.find(c.name);
    if (it != namespaces_.end())
      c.digest = sha256_hex(StateStore::namespace_text(c.name, it->second));
  }
  AlertOrigin origin{config_.cluster_name, config_.host_name, 0};
  if (history_ != nullptr) {
    HistoryEntry h;
    h.time = events::rfc3339_micros(events::now_micros());
    h.source = c.source;
    h.action = c.action;
    h.object = c.object();
    h.namespace_name = c.kind == "Namespace" ? c.name : c.namespace_name;
    h.file = c.file;
    h.digest = c.digest;
    h.severity = c.severity();
    h.summary = c.summary;
    if (auto r = history_->append(std::move(h)); r)
      origin.history_seq = r->seq;
    else
      log_("change log: " + r.error().to_string());
  }
  log_("policy change: " + c.action + " " + c.object() + " by " + c.source + " (severity " +
       std::to_string(c.severity()) + "): " + c.summary);
  if (alert_sink_) alert_sink_(change_alert(c, origin));
}

namespace {

// The object a stored file holds, for the change log ("" when it cannot be read as one).
std::string object_of_file(const std::string& file, const std::string& text, std::string* ns) {
  if (file.starts_with("namespaces/")) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("namespace") || !j["namespace"].is_string()) return "";
    *ns = j["namespace"].get<std::string>();
    return "Namespace//" + *ns;
  }
  auto parsed = policy::parse_policies(text, file);
  if (parsed.policies.empty()) return "";
  const auto& p = *parsed.policies.front();
  *ns = p.namespace_name;
  return std::string(to_string(p.kind)) + "/" + p.namespace_name + "/" + p.name;
}

} // namespace

Result<size_t> Agent::accept(const std::string& who) {
  std::lock_guard lock(mu_);
  if (history_ == nullptr) return Error{"this agent keeps no change log", ""};
  auto entries = read_history(store_.dir());
  if (!entries) return entries.error();
  std::map<std::string, const HistoryEntry*> last; // by file
  for (const auto& e : *entries) last[e.file] = &e;
  std::set<std::string> seen;
  size_t added = 0;
  auto append = [&](HistoryEntry h) -> Result<void> {
    h.time = events::rfc3339_micros(events::now_micros());
    h.source = who;
    h.severity = 10;
    auto r = history_->append(std::move(h));
    if (!r) return r.error();
    ++added;
    return {};
  };
  for (const char* dir : {"policies", "namespaces"}) {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(store_.dir() + "/" + dir, ec)) {
      const std::string ext = dir == std::string("policies") ? ".yaml" : ".json";
      if (!f.is_regular_file() || f.path().extension() != ext) continue;
      const std::string file = std::string(dir) + "/" + f.path().filename().string();
      seen.insert(file);
      std::ifstream in(f.path(), std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      const std::string digest = sha256_hex(text);
      const auto it = last.find(file);
      if (it != last.end() && it->second->digest == digest) continue;
      std::string ns;
      const std::string object = object_of_file(file, text, &ns);
      const bool known = it != last.end() && it->second->action != "Deleted";
      if (auto r = append({0, "", "", known ? "Modified" : "Added",
                           object.empty() ? "File//" + file : object, ns, file, digest, 10,
                           "accepted as stored (it did not match the change log)", "", ""});
          !r)
        return r.error();
    }
  }
  for (const auto& [file, e] : last) {
    if (seen.count(file) > 0 || e->action == "Deleted") continue;
    if (auto r = append({0, "", "", "Deleted", e->object, e->namespace_name, file, "", 10,
                         "accepted as removed (its file is gone)", "", ""});
        !r)
      return r.error();
  }
  if (added > 0 && alert_sink_) {
    PolicyChange c;
    c.kind = "ChangeLog";
    c.name = std::string(kHistoryFile);
    c.action = "Modified";
    c.source = who;
    c.lock_changed = true; // an operator's acceptance of altered state: severity 10
    c.summary = "the stored state as found was accepted into the change log (" +
                std::to_string(added) + " entries)";
    alert_sink_(change_alert(c, {config_.cluster_name, config_.host_name, 0}));
  }
  log_("change log: " + who + " accepted the stored state (" + std::to_string(added) +
       " entries appended)");
  return added;
}

Result<std::vector<HistoryEntry>> Agent::history(const std::string& ns) const {
  std::lock_guard lock(mu_);
  auto all = read_history(store_.dir());
  if (!all || ns.empty()) return all;
  std::vector<HistoryEntry> out;
  for (auto& e : *all) {
    if (e.namespace_name == ns) out.push_back(std::move(e));
  }
  return out;
}

VerifyReport Agent::verify() const {
  std::lock_guard lock(mu_); // no change is half written while the files are read
  return verify_history(store_.dir());
}

} // namespace corral::agent
