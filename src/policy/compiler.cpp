#include <algorithm>
#include <cstdio>
#include <set>

#include "policy/decide.h"
#include "policy/glob.h"
#include "policy/ruleset.h"

namespace corral::policy {
namespace {

// What joins the ignored rule and the locking policy's name in a lock report.
constexpr std::string_view kLockReport = " is ignored where the locked policy ";

} // namespace

std::string lock_report_about(std::string_view warning, std::string_view kind_name,
                              std::string_view lock_name) {
  const size_t at = warning.find(kLockReport);
  if (at == std::string_view::npos) return "";
  const std::string_view rule = warning.substr(0, at);
  const std::string_view locker = warning.substr(at + kLockReport.size());
  const bool about_policy = rule.starts_with(kind_name) && rule.size() > kind_name.size() &&
                            rule[kind_name.size()] == ' ';
  const bool about_lock = locker.starts_with(lock_name) && locker.size() > lock_name.size() &&
                          locker[lock_name.size()] == ' ';
  return about_policy || about_lock ? std::string(rule) : "";
}

class RuleSetBuilder {
public:
  RuleSetBuilder(const Settings& settings, const PathResolver& resolve)
      : rs_(std::make_shared<RuleSet>()), resolve_(resolve) {
    rs_->settings_ = settings;
  }

  // Room in the exact-path tables for every exact rule (and its canonical form, often the
  // same): a large policy's table is then never rehashed.
  void reserve(const std::vector<PolicyPtr>& policies) {
    size_t process = 0, file = 0;
    for (const auto& p : policies) {
      for (const Rule& r : p->rules) {
        if (r.target == Target::Path) ++(r.category == Category::Process ? process : file);
      }
    }
    rs_->process_.exact.reserve(process);
    rs_->file_.exact.reserve(file);
  }

  void add(const PolicyPtr& p) {
    rs_->policies_.push_back(p);
    for (const Rule& r : p->rules) add_rule(r, *p);
  }

  // A locked policy's own rules (docs/policy.md "Locked policies"); reports every rule of
  // the other policies that may allow what it denies.
  void lock(std::shared_ptr<const RuleSet> lock, const std::vector<PolicyPtr>& selected) {
    const Policy& locker = *lock->policies().front();
    for (const auto& p : selected) {
      if (p.get() == &locker) continue;
      for (const Rule& r : p->rules) {
        if (r.action == Action::Block || !lock_denies(*lock, r)) continue;
        warnings_.insert(std::string(to_string(p->kind)) + "/" + p->name + " " + r.origin.field +
                         " (" + std::string(to_string(r.action)) + " " + r.value + ")" +
                         std::string(kLockReport) + locker.name +
                         " denies (corral.dev/lock: other policies can only narrow the workloads "
                         "it selects)");
      }
    }
    rs_->locks_.push_back(std::move(lock));
  }

  std::shared_ptr<const RuleSet> finish() {
    for (const PathIndex* idx : {&rs_->process_, &rs_->file_}) {
      for (const auto& [key, rules] : idx->exact) check_conflicts(key, rules);
      for (const auto& [key, rules] : idx->execname) check_conflicts(key, rules);
      check_trie(idx->root, "/");
    }
    for (const auto* names : {&rs_->protocols_, &rs_->capabilities_}) {
      for (const auto& [key, rules] : *names) check_conflicts(key, rules);
    }
    rs_->warnings_.assign(warnings_.begin(), warnings_.end());
    std::string identity;
    for (const auto& p : rs_->policies_) identity += p->key() + '\0' + p->source + '\0';
    const Settings& s = rs_->settings_;
    identity += std::to_string(static_cast<int>(s.postures.file)) +
                std::to_string(static_cast<int>(s.postures.network)) +
                std::to_string(static_cast<int>(s.postures.capabilities)) +
                std::to_string(static_cast<int>(s.dry_run)) +
                std::to_string(static_cast<int>(s.image_only));
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(identity));
    rs_->fingerprint_ = hex;
    return rs_;
  }

private:
  // Whether the locked rules deny what `r` names (the rule's own path, the directory a dir or
  // pattern rule names, "/NAME" for an execname; reads and, unless readOnly, writes; as its
  // first fromSource): where they do, `r` cannot allow. Only the report approximates: decide()
  // applies the lock to each access exactly.
  static bool lock_denies(const RuleSet& locked, const Rule& r) {
    std::string target = r.value;
    if (r.target == Target::Pattern) target = std::string(glob_literal_dir(r.value));
    if ((r.target == Target::Dir || r.target == Target::Pattern) && target.size() > 1)
      target.pop_back();
    if (r.target == Target::ExecName) target = "/" + target;
    const std::string_view source =
        r.from_source.empty() ? std::string_view() : std::string_view(r.from_source.front());
    Access a{r.category, target, source};
    if (!decide(locked, a).allow) return true;
    a.write = !r.read_only;
    return a.write && !decide(locked, a).allow;
  }

  void add_rule(const Rule& r, const Policy& p) {
    CompiledRule c{&r, &p, r.from_source, {}};
    for (const auto& s : r.from_source) add_canonical(c.sources, s);
    ++rs_->rule_count_;
    CategoryTraits& traits = rs_->traits_[static_cast<int>(r.category)];
    ++traits.rules;
    traits.source |= !r.from_source.empty();
    traits.owner |= r.owner_only;
    traits.write |= r.read_only;
    traits.pts |= r.pts_only;
    if (r.action == Action::Allow) {
      rs_->has_allow_[static_cast<int>(r.category)] = true;
      if (!p.dry_run) rs_->live_allow_[static_cast<int>(r.category)] = true;
    }
    if (r.category == Category::Network || r.category == Category::Capabilities) {
      auto& names = r.category == Category::Network ? rs_->protocols_ : rs_->capabilities_;
      names[r.value].push_back(std::move(c));
      return;
    }
    PathIndex& idx = r.category == Category::Process ? rs_->process_ : rs_->file_;
    switch (r.target) {
    case Target::ExecName: idx.execname[r.value].push_back(std::move(c)); return;
    case Target::Path:
      idx.exact[r.value].push_back(c);
      if (auto canonical = canonical_of(r.value)) idx.exact[*canonical].push_back(std::move(c));
      return;
    case Target::Dir:
      node_for(idx.root, r.value).dirs.push_back(c);
      if (r.value.size() > 1) {
        if (auto canonical = canonical_of(r.value.substr(0, r.value.size() - 1)))
          node_for(idx.root, *canonical + "/").dirs.push_back(std::move(c));
      }
      return;
    case Target::Pattern: add_pattern(idx, std::move(c)); return;
    case Target::Protocol:
    case Target::Capability: return;
    }
  }

  // POLICY.md: paths are compared canonical and literal, either match counts. The kernel
  // reports canonical paths, so a pattern under a symlinked directory (/bin/*sh where /bin
  // -> usr/bin) is also indexed with that directory resolved (/usr/bin/*sh). Symlinks
  // inside the wildcard part cannot be resolved ahead of time.
  void add_pattern(PathIndex& idx, CompiledRule c) const {
    const std::string_view dir = glob_literal_dir(c.rule->value);
    if (dir.size() > 1) {
      std::vector<std::string> resolved{std::string(dir.substr(0, dir.size() - 1))};
      add_canonical(resolved, resolved[0]);
      if (resolved.size() > 1) {
        CompiledRule canonical = c;
        canonical.canonical_pattern = resolved[1] + "/" + c.rule->value.substr(dir.size());
        node_for(idx.root, glob_literal_dir(canonical.canonical_pattern))
            .patterns.push_back(std::move(canonical));
      }
    }
    node_for(idx.root, dir).patterns.push_back(std::move(c));
  }

  // The canonical form of `path` inside the workload's root when it differs.
  [[nodiscard]] std::optional<std::string> canonical_of(const std::string& path) const {
    if (!resolve_) return std::nullopt;
    auto canonical = resolve_(path);
    if (canonical && *canonical == path) return std::nullopt;
    return canonical;
  }

  // Appends the canonical form of `path` inside the workload's root when it differs.
  void add_canonical(std::vector<std::string>& out, const std::string& path) const {
    if (auto canonical = canonical_of(path)) out.push_back(std::move(*canonical));
  }

  // The trie node for directory `dir` ("/a/b/"), created on demand.
  static TrieNode& node_for(TrieNode& root, std::string_view dir) {
    TrieNode* node = &root;
    dir.remove_prefix(1);
    while (!dir.empty()) {
      const size_t slash = dir.find('/');
      const std::string_view component = dir.substr(0, slash);
      auto it = node->children.find(component);
      if (it == node->children.end()) {
        it = node->children.emplace(std::string(component), std::make_unique<TrieNode>()).first;
      }
      node = it->second.get();
      dir.remove_prefix(slash == std::string_view::npos ? dir.size() : slash + 1);
    }
    return *node;
  }

  void check_trie(const TrieNode& node, const std::string& dir) {
    check_conflicts(dir, node.dirs);
    check_conflicts(dir, node.patterns);
    for (const auto& [name, child] : node.children) check_trie(*child, dir + name + "/");
  }

  // Two rules with the same target, conditions and fromSource but different actions:
  // the verdict is decided by Block > Audit > Allow, which the author may not expect.
  void check_conflicts(std::string_view key, const std::vector<CompiledRule>& rules) {
    constexpr size_t kMaxPairwise = 256; // a bucket this large is reported only in part
    const size_t n = std::min(rules.size(), kMaxPairwise);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i + 1; j < n; ++j) {
        const Rule& a = *rules[i].rule;
        const Rule& b = *rules[j].rule;
        if (a.action == b.action || a.value != b.value || a.target != b.target ||
            a.recursive != b.recursive || a.owner_only != b.owner_only ||
            a.read_only != b.read_only || a.pts_only != b.pts_only ||
            a.from_source != b.from_source)
          continue;
        const bool a_wins = a.action > b.action;
        warnings_.insert("conflicting rules for " + std::string(key) + ": " + describe(rules[i]) +
                         " and " + describe(rules[j]) + "; " +
                         std::string(to_string(a_wins ? a.action : b.action)) + " wins");
      }
    }
  }

  static std::string describe(const CompiledRule& c) {
    return c.policy->name + " " + c.rule->origin.field + " (" +
           std::string(to_string(c.rule->action)) + ")";
  }

  std::shared_ptr<RuleSet> rs_;
  const PathResolver& resolve_;
  std::set<std::string> warnings_;
};

std::shared_ptr<const RuleSet> compile(const std::vector<PolicyPtr>& policies, const Workload& w,
                                       const Settings& settings, const PathResolver& resolve) {
  std::vector<PolicyPtr> selected;
  for (const auto& p : policies) {
    if (selects(*p, w)) selected.push_back(p);
  }
  RuleSetBuilder builder(settings, resolve);
  builder.reserve(selected);
  for (const auto& p : selected) builder.add(p);
  for (const auto& p : selected) {
    if (!p->locked || selected.size() == 1) continue;
    RuleSetBuilder lock(settings, resolve);
    lock.add(p);
    builder.lock(lock.finish(), selected);
  }
  return builder.finish();
}

} // namespace corral::policy
