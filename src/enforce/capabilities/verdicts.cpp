#include "enforce/capabilities/verdicts.h"

#include "policy/decide.h"
#include "policy/names.h"

namespace corral::enforce::capabilities {

Action action_of(const policy::Verdict& v) {
  if (!v.allow) return Action::Block;
  return v.alert ? Action::Report : Action::None;
}

Verdicts compute_verdicts(const policy::RuleSet& rs) {
  using policy::Category;
  Verdicts out;
  for (const auto name : policy::capability_names()) {
    const int cap = policy::capability_number(name);
    if (cap < 0 || static_cast<size_t>(cap) >= kMaxCaps) continue;
    out.actions[cap] = action_of(policy::decide(rs, {Category::Capabilities, name, ""}));
  }
  // Only a capability with fromSource rules can have another verdict for some program: a
  // program no rule names gets the verdict above.
  for (const auto& [name, rules] : rs.names(Category::Capabilities)) {
    const int cap = policy::capability_number(name);
    if (cap < 0 || static_cast<size_t>(cap) >= kMaxCaps) continue;
    for (const auto& r : rules) {
      for (const auto& path : r.sources) {
        const auto a = action_of(policy::decide(rs, {Category::Capabilities, name, path}));
        out.by_source.push_back({cap, path, a});
        out.sourced |= uint64_t{1} << cap;
      }
    }
  }
  return out;
}

} // namespace corral::enforce::capabilities
