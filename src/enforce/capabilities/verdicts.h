// What one workload's rules say about each capability, precomputed with policy::decide() for
// the kernel programs to look up (bpf/shared/capabilities.h): no precedence in BPF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "enforce/capabilities/actions.h"
#include "policy/decide.h"
#include "policy/ruleset.h"

namespace corral::enforce::capabilities {

// A verdict that holds only for one acting program (a fromSource rule's path).
struct SourcedVerdict {
  int cap = 0;
  std::string path; // as the rule lists it (literal or canonical)
  Action action = Action::None;
};

struct Verdicts {
  Actions actions{};    // for any program, by capability number
  uint64_t sourced = 0; // bit n: capability n has SourcedVerdicts
  std::vector<SourcedVerdict> by_source;
};

// Action::Block for a deny, Report for an allow that alerts (Audit, posture audit, dry run).
Action action_of(const policy::Verdict& v);
Verdicts compute_verdicts(const policy::RuleSet& rs);

} // namespace corral::enforce::capabilities
