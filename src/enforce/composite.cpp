#include "enforce/enforcer.h"

namespace corral::enforce {

std::string_view to_string(Coverage::Level l) {
  switch (l) {
  case Coverage::Level::Enforced: return "enforced";
  case Coverage::Level::Audited: return "audited only";
  case Coverage::Level::Unsupported: break;
  }
  return "unsupported";
}

Result<void> CompositeEnforcer::enforce(const workload::Workload& w,
                                        std::shared_ptr<const policy::RuleSet> rules) {
  std::lock_guard lock(mu_);
  const auto prev = in_force_.find(w.id);
  for (size_t i = 0; i < backends_.size(); ++i) {
    auto r = backends_[i]->enforce(w, rules);
    if (r) continue;
    // A change is all or nothing: the backends that took it go back to what was in force.
    // A first enforcement keeps what the others could enforce (a network failure must not
    // lift the workload's process and file rules); the agent reports it and retries.
    if (prev != in_force_.end()) {
      for (size_t j = 0; j < i; ++j) (void)backends_[j]->enforce(w, prev->second);
    }
    return Error{std::string(backends_[i]->name()) + ": " + r.error().message, r.error().hint};
  }
  in_force_[w.id] = std::move(rules);
  return {};
}

void CompositeEnforcer::release(const std::string& id) {
  std::lock_guard lock(mu_);
  for (auto* b : backends_) b->release(id);
  in_force_.erase(id);
}

Counters CompositeEnforcer::counters() const {
  Counters sum = backends_.front()->counters();
  for (size_t i = 1; i < backends_.size(); ++i) {
    const Counters c = backends_[i]->counters();
    sum.events += c.events;
    sum.denied += c.denied;
    sum.errors_allowed += c.errors_allowed;
    sum.errors_denied += c.errors_denied;
    sum.timeouts_allowed += c.timeouts_allowed;
    sum.timeouts_denied += c.timeouts_denied;
    sum.extras.insert(c.extras.begin(), c.extras.end());
  }
  return sum;
}

Coverage CompositeEnforcer::coverage(policy::Category c) const {
  Coverage best;
  for (auto* b : backends_) {
    Coverage one = b->coverage(c);
    if (one.level > best.level || (best.how.empty() && best.reason.empty())) best = std::move(one);
  }
  return best;
}

} // namespace corral::enforce
