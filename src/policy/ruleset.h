// A RuleSet: every rule of the policies selecting one workload, indexed so that a decision
// costs the same with 10 or 100,000 rules — exact paths and execnames in hash maps,
// directories and the literal prefixes of patterns in a trie over path components.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/strings.h"
#include "policy/model.h"
#include "policy/selector.h"

namespace corral::policy {

// One rule in a RuleSet, with the policy it came from.
struct CompiledRule {
  const Rule* rule = nullptr;
  const Policy* policy = nullptr;
  std::vector<std::string> sources; // fromSource paths, literal and canonical
  std::string canonical_pattern;    // matchPatterns: the glob with its directory canonical

  [[nodiscard]] bool qualified() const { return !rule->from_source.empty(); }
  // The glob to match the access against: the rule's own, or its canonical form.
  [[nodiscard]] const std::string& pattern() const {
    return canonical_pattern.empty() ? rule->value : canonical_pattern;
  }
};

// Directories and patterns under one path prefix.
struct TrieNode {
  StringMap<std::unique_ptr<TrieNode>> children;
  std::vector<CompiledRule> dirs;     // matchDirectories whose dir is this node
  std::vector<CompiledRule> patterns; // matchPatterns whose literal prefix is this node
};

// The rules of one path category (process or file).
struct PathIndex {
  StringMap<std::vector<CompiledRule>> exact;    // by path (literal and canonical)
  StringMap<std::vector<CompiledRule>> execname; // by basename (process only)
  TrieNode root;
};

// What the rules of one category need to know about an access: an enforcer reads only
// these facts, and may cache an allow in the kernel only when no rule depends on the
// subject (fromSource, ownerOnly) or on the open mode (readOnly).
struct CategoryTraits {
  size_t rules = 0;
  bool source = false; // some rule has fromSource
  bool owner = false;  // some rule is ownerOnly
  bool write = false;  // some rule is readOnly
  bool pts = false;    // some rule has pts: false

  [[nodiscard]] bool subject_dependent() const { return source || owner || write || pts; }
};

// Resolves a path inside the workload's root, following symlinks there; returns the
// canonical path when it differs (e.g. /bin/bash -> /usr/bin/bash), else nullopt.
using PathResolver = std::function<std::optional<std::string>(const std::string&)>;

class RuleSet {
public:
  [[nodiscard]] const Settings& settings() const { return settings_; }
  [[nodiscard]] bool has_allow(Category c) const { return has_allow_[static_cast<int>(c)]; }
  // Whether every Allow rule of the category comes from a policy in dry run: the default
  // posture then denies nothing either (POLICY.md, Corral's per-policy dry run).
  [[nodiscard]] bool allow_dry_run(Category c) const {
    return has_allow_[static_cast<int>(c)] && !live_allow_[static_cast<int>(c)];
  }
  [[nodiscard]] size_t rule_count() const { return rule_count_; }
  [[nodiscard]] const CategoryTraits& traits(Category c) const {
    return traits_[static_cast<int>(c)];
  }
  // Conflicting rules found while compiling ("... wins"), for `corral apply` to print.
  [[nodiscard]] const std::vector<std::string>& warnings() const { return warnings_; }
  [[nodiscard]] const std::vector<PolicyPtr>& policies() const { return policies_; }
  // Identifies what the RuleSet was compiled from (policies' texts and settings), stably
  // across agent restarts: a kernel object built for one fingerprint may be reused for it.
  [[nodiscard]] const std::string& fingerprint() const { return fingerprint_; }

  // For a workload that a locked policy and another policy select: one RuleSet per locked
  // policy, of its rules alone. decide() allows an access only when all the rules and each
  // of these allow it (docs/policy.md "Locked policies"); empty otherwise.
  [[nodiscard]] const std::vector<std::shared_ptr<const RuleSet>>& locks() const { return locks_; }

  [[nodiscard]] const PathIndex& paths(Category c) const {
    return c == Category::Process ? process_ : file_;
  }
  [[nodiscard]] const StringMap<std::vector<CompiledRule>>& names(Category c) const {
    return c == Category::Network ? protocols_ : capabilities_;
  }

private:
  friend class RuleSetBuilder;
  Settings settings_;
  std::vector<PolicyPtr> policies_;
  PathIndex process_;
  PathIndex file_;
  StringMap<std::vector<CompiledRule>> protocols_;
  StringMap<std::vector<CompiledRule>> capabilities_;
  std::array<bool, 4> has_allow_{};
  std::array<bool, 4> live_allow_{}; // an Allow rule of a policy not in dry run
  size_t rule_count_ = 0;
  std::array<CategoryTraits, 4> traits_{};
  std::vector<std::string> warnings_;
  std::string fingerprint_;
  std::vector<std::shared_ptr<const RuleSet>> locks_;
};

// The rule ("KIND/NAME FIELD (ACTION TARGET)") a compile warning reports a lock ignoring,
// when that rule is of policy `kind_name` ("KIND/NAME") or the lock is policy `lock_name`'s;
// "" for any other warning.
std::string lock_report_about(std::string_view warning, std::string_view kind_name,
                              std::string_view lock_name);

// Compiles the rules of every policy in `policies` that selects `w`.
std::shared_ptr<const RuleSet> compile(const std::vector<PolicyPtr>& policies, const Workload& w,
                                       const Settings& settings,
                                       const PathResolver& resolve = nullptr);

} // namespace corral::policy
