// The rules the fd holder answers with while no agent runs (agent/fd_holder.h).
//
// For each group it hands to the holder, the agent writes what the group's RuleSet was
// compiled from — the policies' YAML, the settings (postures, dry run), the workload's
// labels and namespace, its init pid — to <state dir>/held-rules/<id>.json. The holder
// compiles them again (paths resolved in the workload's root, as the agent does) and
// judges each event with decide() on its path: an allowed program that was never cached
// still runs and a forbidden one is denied, under allow-lists and block-lists alike.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "policy/ruleset.h"
#include "workload/workload.h"

namespace corral::agent {

struct HeldRules {
  std::shared_ptr<const policy::RuleSet> rules;
  std::string root_prefix; // readlink of the workload's /proc/<pid>/root
  int pid = 0;
  uint64_t cgroup = 0;   // the exec backstop's key for the workload (0: not listed)
  uint64_t start_ns = 0; // the image-only rule's reference (0: unknown)
};

// Writes them atomically; failures are logged (the holder then falls back to the group's
// undecidable verdict).
void save_held_rules(const std::string& dir, const workload::Workload& w,
                     const policy::RuleSet& rules,
                     const std::function<void(const std::string&)>& log);
void drop_held_rules(const std::string& dir, const std::string& id);
// nullopt when missing, unreadable, or the workload's process is gone.
std::optional<HeldRules> load_held_rules(const std::string& dir, const std::string& id);

} // namespace corral::agent
