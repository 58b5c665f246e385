// A change of a policy or of a namespace's annotations, as an alert and a history entry
// (issue 12): `Type: PolicyChange`, `Operation: Policy`, `Resource: KIND/NAMESPACE/NAME`,
// `Action: Added|Modified|Deleted`, who made it, and what it permits or forbids that it
// did not before.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "events/alert.h"
#include "policy/model.h"
#include "policy/ruleset.h"

namespace corral::agent {

struct PolicyChange {
  std::string kind; // KubeArmorPolicy, KubeArmorClusterPolicy, KubeArmorHostPolicy, Namespace
  std::string namespace_name, name;
  std::string action; // Added | Modified | Deleted
  std::string source; // who: "local uid 0 (corral apply)", "kubernetes: manager …"
  std::string summary;
  bool lock_changed = false; // a locked policy was modified or deleted
  bool widens = false;       // some workload may now run what it could not
  std::string file, digest;  // the stored file (relative to the state dir) and its sha256

  [[nodiscard]] std::string object() const { return kind + "/" + namespace_name + "/" + name; }
  [[nodiscard]] int severity() const { return lock_changed || widens ? 10 : 5; }
};

// What changed from `before` to `after` (either may be null, not both).
PolicyChange describe_policy_change(const policy::Policy* before, const policy::Policy* after);
PolicyChange describe_namespace_change(const std::string& ns, const policy::Labels& before,
                                       const policy::Labels& after);

// Whether a workload whose rules went from `before` to `after` may now run something it
// could not: a program a process rule of either names, or one no rule names (the default
// posture lifted or turned to audit, a dry run turned on). Null rules allow everything.
bool widens_exec(const policy::RuleSet* before, const policy::RuleSet* after);

struct AlertOrigin {
  std::string cluster_name, host_name;
  uint64_t history_seq = 0; // 0: no history entry
};
// An alert of the agent's own, stamped now, with its cluster, host and Enforcer corrald.
events::Alert agent_alert(const AlertOrigin& origin);
events::Alert change_alert(const PolicyChange& c, const AlertOrigin& origin);
// The agent found its change log or stored state altered behind its back (`problems` from
// verify_history, the first one first).
events::Alert tamper_alert(const std::vector<std::string>& problems, const AlertOrigin& origin);

} // namespace corral::agent
