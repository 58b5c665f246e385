#include "agent/policy_change.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "events/format.h"
#include "policy/decide.h"
#include "policy/glob.h"

namespace corral::agent {
namespace {

using policy::Action;
using policy::Category;
using policy::Rule;
using policy::Target;

constexpr size_t kMaxSummary = 600; // an alert's message stays readable

// "Allow process path /usr/sbin/chroot fromSource /bin/bash readOnly": what a rule decides,
// without where it was written (so that a reformatted policy changes nothing).
std::string describe(const Rule& r) {
  static constexpr std::string_view kTargets[] = {"path",    "execname", "dir",
                                                  "pattern", "protocol", "capability"};
  std::string s = std::string(to_string(r.action)) + " " + std::string(section_name(r.category)) +
                  " " + std::string(kTargets[static_cast<int>(r.target)]) + " " + r.value;
  if (r.recursive) s += " recursive";
  if (!r.from_source.empty()) s += " fromSource " + join(r.from_source, ",");
  if (r.owner_only) s += " ownerOnly";
  if (r.read_only) s += " readOnly";
  return s;
}

std::vector<std::string> rules_of(const policy::Policy* p) {
  std::vector<std::string> out;
  if (p != nullptr) {
    for (const auto& r : p->rules) out.push_back(describe(r));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The rules in `a` that `b` lacks (multisets, both sorted).
std::vector<std::string> minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

void add_part(std::string& summary, const std::string& title, const std::vector<std::string>& v) {
  if (v.empty()) return;
  summary += (summary.empty() ? "" : "; ") + title + ": " + join(v, ", ");
}

// The path an exec of what `r` names would have (the same approximation as the lock report).
std::string exec_target(const Rule& r) {
  std::string t = r.value;
  if (r.target == Target::Pattern) t = std::string(policy::glob_literal_dir(r.value));
  if ((r.target == Target::Dir || r.target == Target::Pattern) && t.size() > 1) t.pop_back();
  if (r.target == Target::ExecName) t = "/" + t;
  return t;
}

std::string selector_text(const policy::Policy& p) {
  std::string s;
  for (const auto& [k, v] : p.selector.match_labels) s += k + "=" + v + ",";
  for (const auto& e : p.selector.match_expressions)
    s += e.key + (e.in ? " in " : " notin ") + join(e.values, "|") + ",";
  return s;
}

std::string truncated(std::string s) {
  if (s.size() <= kMaxSummary) return s;
  s.resize(kMaxSummary);
  return s + " …";
}

} // namespace

PolicyChange describe_policy_change(const policy::Policy* before, const policy::Policy* after) {
  const policy::Policy& p = after != nullptr ? *after : *before;
  PolicyChange c;
  c.kind = std::string(to_string(p.kind));
  c.namespace_name = p.namespace_name;
  c.name = p.name;
  c.action = before == nullptr ? "Added" : after == nullptr ? "Deleted" : "Modified";
  c.lock_changed = before != nullptr && before->locked;
  const auto old_rules = rules_of(before), new_rules = rules_of(after);
  std::vector<std::string> permits, forbids, unpermits, unforbids;
  for (auto& r : minus(new_rules, old_rules))
    (r.starts_with("Block") ? forbids : permits).push_back(r);
  for (auto& r : minus(old_rules, new_rules))
    (r.starts_with("Block") ? unforbids : unpermits).push_back(r);
  add_part(c.summary, "permits", permits);
  add_part(c.summary, "forbids", forbids);
  add_part(c.summary, "no longer permits", unpermits);
  add_part(c.summary, "no longer forbids", unforbids);
  const bool was_locked = before != nullptr && before->locked;
  const bool is_locked = after != nullptr && after->locked;
  if (was_locked != is_locked)
    c.summary +=
        std::string(c.summary.empty() ? "" : "; ") + (is_locked ? "lock added" : "LOCK LIFTED");
  else if (is_locked && after != nullptr && before != nullptr)
    c.summary += std::string(c.summary.empty() ? "" : "; ") + "locked policy changed";
  if (before != nullptr && after != nullptr && before->dry_run != after->dry_run)
    c.summary += std::string(c.summary.empty() ? "" : "; ") +
                 (after->dry_run ? "dry run turned on" : "dry run turned off");
  if (before != nullptr && after != nullptr && selector_text(*before) != selector_text(*after))
    c.summary += std::string(c.summary.empty() ? "" : "; ") + "selector changed";
  if (c.summary.empty()) c.summary = "no change to its rules";
  c.summary = truncated(std::move(c.summary));
  return c;
}

PolicyChange describe_namespace_change(const std::string& ns, const policy::Labels& before,
                                       const policy::Labels& after) {
  PolicyChange c;
  c.kind = "Namespace";
  c.name = ns;
  c.action = before.empty() ? "Added" : after.empty() ? "Deleted" : "Modified";
  std::vector<std::string> set, removed;
  for (const auto& [k, v] : after) {
    const auto it = before.find(k);
    if (it == before.end() || it->second != v) set.push_back(k + "=" + v);
  }
  for (const auto& [k, v] : before) {
    if (after.count(k) == 0) removed.push_back(k + " (was " + v + ")");
  }
  add_part(c.summary, "annotations set", set);
  add_part(c.summary, "annotations removed", removed);
  if (c.summary.empty()) c.summary = "no change";
  c.summary = truncated(std::move(c.summary));
  return c;
}

bool widens_exec(const policy::RuleSet* before, const policy::RuleSet* after) {
  // The image-only rule turned off: an allowed path then runs whatever was put there.
  if (before != nullptr && after != nullptr && before->settings().image_only &&
      !after->settings().image_only && after->has_allow(Category::Process))
    return true;
  // A path no rule names stands for every program the rules leave to the default posture.
  // Process allow-lists are short; a huge one is sampled (its first kMaxTargets programs) to
  // keep a change's cost bounded: this only grades the alert's severity.
  constexpr size_t kMaxTargets = 4096;
  std::set<std::string> targets{"/corral-unnamed-program"};
  for (const auto* rs : {before, after}) {
    if (rs == nullptr) continue;
    for (const auto& p : rs->policies()) {
      for (const auto& r : p->rules) {
        if (r.category == Category::Process && targets.size() < kMaxTargets)
          targets.insert(exec_target(r));
      }
    }
  }
  auto allows = [](const policy::RuleSet* rs, const std::string& path) {
    return rs == nullptr || policy::decide(*rs, policy::Access{Category::Process, path, ""}).allow;
  };
  return std::any_of(targets.begin(), targets.end(),
                     [&](const std::string& t) { return !allows(before, t) && allows(after, t); });
}

events::Alert agent_alert(const AlertOrigin& origin) {
  events::Alert a;
  const int64_t us = events::now_micros();
  a.timestamp = us / 1000000;
  a.updated_time = events::rfc3339_micros(us);
  a.cluster_name = origin.cluster_name;
  a.host_name = origin.host_name;
  a.enforcer = "corrald";
  return a;
}

namespace {

events::Alert change_alert_base(const AlertOrigin& origin) {
  events::Alert a = agent_alert(origin);
  a.type = "PolicyChange";
  a.operation = "Policy";
  return a;
}

} // namespace

events::Alert tamper_alert(const std::vector<std::string>& problems, const AlertOrigin& origin) {
  events::Alert a = change_alert_base(origin);
  a.policy_name = "corral-change-log";
  a.severity = "10";
  a.atags = {"CORRAL_POLICY_CHANGE", "CORRAL_TAMPERED"};
  a.tags = join(a.atags, ",");
  a.message = "the change log or the stored policies were altered behind the agent's back (" +
              std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") +
              ", `corral verify` lists them); first: " +
              (problems.empty() ? std::string("?") : problems.front());
  a.source = "agent start";
  a.resource = "history.jsonl";
  a.action = "Verify";
  a.result = "Failed";
  return a;
}

events::Alert change_alert(const PolicyChange& c, const AlertOrigin& origin) {
  events::Alert a = change_alert_base(origin);
  a.namespace_name = c.kind == "Namespace" ? c.name : c.namespace_name;
  // Not the changed policy's name: PolicyName says which policy matched an access, and
  // parsers that count a policy's matches must not count its changes.
  a.policy_name = "corral-policy-change";
  a.severity = std::to_string(c.severity());
  a.atags = {"CORRAL_POLICY_CHANGE"};
  if (c.lock_changed) a.atags.emplace_back("CORRAL_LOCK");
  if (c.widens) a.atags.emplace_back("CORRAL_WIDENS_EXEC");
  a.tags = join(a.atags, ",");
  a.message = c.summary;
  if (c.widens) a.message += "; widens what a workload may run";
  a.source = c.source;
  a.resource = c.object();
  if (!c.digest.empty()) a.data = "sha256=" + c.digest;
  if (origin.history_seq != 0)
    a.data +=
        std::string(a.data.empty() ? "" : " ") + "history=" + std::to_string(origin.history_seq);
  a.action = c.action;
  a.result = "Passed";
  return a;
}

} // namespace corral::agent
