// The rules the fd holder answers with while no agent runs (agent/fd_holder.h).
//
// For each group it hands to the holder, the agent writes what the group's RuleSet was
// compiled from — the policies' YAML, the settings (postures, dry run), the workload's
// labels and namespace, its init pid — to <state dir>/held-rules/<id>.json and the rules
// file it names. The holder
// compiles them again (paths resolved in the workload's root, as the agent does) and
// judges each event with decide() on its path: an allowed program that was never cached
// still runs and a forbidden one is denied, under allow-lists and block-lists alike.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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

// Writes them for the holder. What a RuleSet was compiled from (policies' YAML, settings)
// goes to rules-<fingerprint>[-n].json, written once however many workloads share it; each
// workload's own file only names that file (a policy applied to hundreds of workloads wrote
// its YAML once per workload, and each file create cost the apply half a millisecond).
// Failures are logged (the holder then falls back to the group's undecidable verdict).
// Thread-safe.
class HeldRulesStore {
public:
  HeldRulesStore(std::string dir, std::function<void(const std::string&)> log);
  void save(const workload::Workload& w, const policy::RuleSet& rules);
  void drop(const std::string& id);
  // Removes the rules files no workload file names (left by an earlier agent).
  void sweep();

private:
  void release_file_locked(const std::string& file);
  struct Shared {
    std::vector<policy::PolicyPtr> policies;
    policy::Settings settings;
    std::string file;
    size_t users = 0;
  };
  std::string dir_;
  std::function<void(const std::string&)> log_;
  std::mutex mu_;
  std::multimap<std::string, Shared> by_fingerprint_;
  std::map<std::string, std::string> file_of_workload_; // id -> its rules file
  size_t next_ = 0;
};

// nullopt when missing, unreadable, or the workload's process is gone.
std::optional<HeldRules> load_held_rules(const std::string& dir, const std::string& id);

} // namespace corral::agent
