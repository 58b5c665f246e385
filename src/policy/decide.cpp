#include "policy/decide.h"

#include <algorithm>

#include "policy/glob.h"

namespace corral::policy {
namespace {

// Whether a rule whose target and fromSource match also covers this access (POLICY.md
// "ownerOnly and readOnly"): a Block or Audit rule covers only what its flags name (as
// KubeArmor audits what the Block rule would deny), an Allow rule only what its flags
// permit. A `pts: false` rule covers only accesses from a terminal.
bool covers(const CompiledRule& c, const Access& a) {
  const Rule& r = *c.rule;
  if (!c.sources.empty() &&
      std::find(c.sources.begin(), c.sources.end(), a.source) == c.sources.end())
    return false;
  if (r.pts_only && !a.pts) return false;
  if (r.action != Action::Allow) {
    return (r.owner_only && !a.owner) || (r.read_only && a.write) ||
           (!r.owner_only && !r.read_only);
  }
  return (!r.owner_only || a.owner) && (!r.read_only || !a.write);
}

// At equal specificity: fromSource-qualified beats unqualified, then Block > Audit > Allow.
bool stronger(const CompiledRule& a, const CompiledRule& b) {
  if (a.qualified() != b.qualified()) return a.qualified();
  return a.rule->action > b.rule->action;
}

// The strongest rule of `rules` that covers the access and passes `target_matches` (checked
// only for rules that would win, since a glob costs more than the comparison).
template <class TargetMatches>
const CompiledRule* best_of(const std::vector<CompiledRule>& rules, const Access& a,
                            const CompiledRule* best, TargetMatches target_matches) {
  for (const auto& c : rules) {
    if ((best == nullptr || stronger(c, *best)) && target_matches(c) && covers(c, a)) best = &c;
  }
  return best;
}

const CompiledRule* best_of(const std::vector<CompiledRule>& rules, const Access& a,
                            const CompiledRule* best) {
  return best_of(rules, a, best, [](const CompiledRule&) { return true; });
}

template <class Map>
const CompiledRule* lookup(const Map& map, std::string_view key, const Access& a,
                           const CompiledRule* best) {
  const auto it = map.find(key);
  return it == map.end() ? best : best_of(it->second, a, best);
}

// The best directory rule at the deepest directory that has one covering the access.
// `rest` is the part of the path below `node`'s directory.
const CompiledRule* deepest_dir(const TrieNode& node, std::string_view rest, const Access& a) {
  const size_t slash = rest.find('/');
  if (!rest.empty()) {
    const auto it = node.children.find(rest.substr(0, slash));
    if (it != node.children.end()) {
      const std::string_view below =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      if (const auto* found = deepest_dir(*it->second, below, a)) return found;
    }
  }
  // The directory itself (rest empty) and its direct entries match any dir rule here;
  // deeper files only recursive ones.
  const bool direct = slash == std::string_view::npos;
  return best_of(node.dirs, a, nullptr,
                 [direct](const CompiledRule& c) { return direct || c.rule->recursive; });
}

const CompiledRule* best_pattern(const TrieNode& root, const Access& a) {
  const CompiledRule* best = nullptr;
  const TrieNode* node = &root;
  std::string_view rest = a.target.substr(1);
  while (node != nullptr) {
    best = best_of(node->patterns, a, best,
                   [&a](const CompiledRule& c) { return glob_match(c.pattern(), a.target); });
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) break;
    const auto it = node->children.find(rest.substr(0, slash));
    node = it == node->children.end() ? nullptr : it->second.get();
    rest.remove_prefix(slash + 1);
  }
  return best;
}

const CompiledRule* match_path(const PathIndex& idx, const Access& a) {
  const CompiledRule* best = lookup(idx.exact, a.target, a, nullptr);
  if (!idx.execname.empty()) {
    const size_t slash = a.target.rfind('/');
    best = lookup(idx.execname, a.target.substr(slash == std::string_view::npos ? 0 : slash + 1), a,
                  best);
  }
  if (best != nullptr || a.target.empty() || a.target[0] != '/') return best;
  if ((best = deepest_dir(idx.root, a.target.substr(1), a)) != nullptr) return best;
  return best_pattern(idx.root, a);
}

// Network and capability rules by name; a rule for protocol "all" matches any protocol,
// less specifically than a rule naming it.
const CompiledRule* match_name(const RuleSet& rs, const Access& a) {
  const auto& names = rs.names(a.category);
  const CompiledRule* best = lookup(names, a.target, a, nullptr);
  if (best == nullptr && a.category == Category::Network) best = lookup(names, "all", a, nullptr);
  return best;
}

Verdict apply_dry_run(Verdict v, bool dry_run) {
  if (dry_run && !v.allow) {
    v.allow = true;
    v.action = "Audit (Block)";
  }
  return v;
}

Verdict decide_rules(const RuleSet& rs, const Access& a) {
  const bool by_path = a.category == Category::Process || a.category == Category::File;
  const CompiledRule* rule = by_path ? match_path(rs.paths(a.category), a) : match_name(rs, a);
  const bool dry_run = rs.settings().dry_run;
  if (rule != nullptr) {
    const Action act = rule->rule->action;
    return apply_dry_run(
        Verdict{act != Action::Block, act != Action::Allow, to_string(act), rule, false},
        dry_run || rule->policy->dry_run);
  }
  if (!rs.has_allow(a.category)) return Verdict{true, false, "", nullptr, false};
  // The implicit start-up set: reads only, of files the image shipped.
  if (a.category == Category::File && !a.write && a.shipped) {
    if (const auto* entry = startup_entry(a.target))
      return Verdict{true, false, "", nullptr, false, entry};
  }
  const bool block = posture_for(rs.settings().postures, a.category) == Posture::Block;
  return apply_dry_run(Verdict{!block, true, block ? "Block" : "Audit", nullptr, true},
                       dry_run || rs.allow_dry_run(a.category));
}

} // namespace

// A locked workload (docs/policy.md "Locked policies"): allowed only when each locked
// policy, judged alone, allows too. Its denial then decides, naming the rule it overrode;
// its alert is kept when the other rules would silence it.
Verdict decide(const RuleSet& rs, const Access& a) {
  const Verdict v = decide_rules(rs, a);
  if (rs.locks().empty() || !v.allow) return v; // a denial stands
  // No rule matched: none of a lock's matches either (its rules are among them), so it can
  // only reach the same posture, start-up set or allow with no more Allow rules: no denial.
  if (v.rule == nullptr) return v;
  Verdict out = v;
  for (const auto& lock : rs.locks()) {
    Verdict l = decide_rules(*lock, a);
    if (!l.allow) {
      l.lock = lock->policies().front().get();
      l.ignored = v.rule;
      return l;
    }
    if (!out.alert && l.alert) out = l;
  }
  return out;
}

std::string_view Verdict::policy_name() const {
  if (default_posture) return "DefaultPosture";
  return rule != nullptr ? std::string_view(rule->policy->name) : std::string_view();
}

namespace {

std::string describe(const CompiledRule& c) {
  static constexpr std::string_view kTargets[] = {"path",    "execname", "dir",
                                                  "pattern", "protocol", "capability"};
  const Rule& r = *c.rule;
  return c.policy->name + " " + r.origin.field + " (" +
         std::string(kTargets[static_cast<int>(r.target)]) + " " + r.value + ") at " +
         r.origin.file.get() + ":" + std::to_string(r.origin.line) + ":" +
         std::to_string(r.origin.column);
}

} // namespace

std::string Verdict::explain(const RuleSet& rs, Category category) const {
  std::string why = explain_rules(rs, category);
  if (lock == nullptr) return why;
  return why + "; the workload is locked by " + lock->name + " (corral.dev/lock): " +
         (ignored != nullptr ? std::string(to_string(ignored->rule->action)) + " rule " +
                                   describe(*ignored) + " is ignored"
                             : "the other policies' allow is ignored") +
         ", other policies can only narrow a locked workload";
}

std::string Verdict::explain_rules(const RuleSet& rs, Category category) const {
  const std::string section(section_name(category));
  if (rule != nullptr) return describe(*rule);
  if (startup != nullptr) {
    return "no file rule matched; the read is in the implicit start-up set (" +
           std::string(startup->glob) + ": " + std::string(startup->why) +
           "), which a file allow-list does not deny (docs/policy.md)";
  }
  if (default_posture) {
    const Posture posture = posture_for(rs.settings().postures, category);
    const std::string group(category == Category::Process ? "file" : section);
    return "no " + section + " rule matched and the workload has " + section +
           " Allow rules: default " + group + " posture " + std::string(to_string(posture));
  }
  return "no " + section + " rule matched and the workload has no " + section +
         " Allow rules: allowed";
}

} // namespace corral::policy
