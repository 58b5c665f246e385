// The policy model: KubeArmor's three policy kinds after parsing and normalisation
// (see POLICY.md). Every field a rule can inherit is already resolved here.
#pragma once

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace corral::policy {

enum class Kind { Policy, ClusterPolicy, HostPolicy };
enum class Action { Allow, Audit, Block };
enum class Category { Process, File, Network, Capabilities };
enum class Target { Path, ExecName, Dir, Pattern, Protocol, Capability };

std::string_view to_string(Kind k);        // "KubeArmorPolicy", ...
std::string_view to_string(Action a);      // "Allow", "Audit", "Block"
std::string_view to_string(Category c);    // "Process", "File", "Network", "Capabilities"
std::string_view section_name(Category c); // "process", "file", "network", "capabilities"

using Labels = std::map<std::string, std::string>;

// An immutable value that many rules share: what they inherit from their section or spec
// (tags, message) and the file they come from. One copy per policy instead of one per rule
// (a 100,000-rule policy held ~10 MB of copies). Reads as a `const T&`.
template <class T> class Shared {
public:
  Shared() = default;
  Shared(T value) : value_(std::make_shared<const T>(std::move(value))) {} // NOLINT: implicit
  Shared(const char* value) // NOLINT: implicit, for Shared<std::string>
      requires std::is_same_v<T, std::string> : Shared(T(value)) {}

  [[nodiscard]] const T& get() const { return value_ ? *value_ : none(); }
  operator const T&() const { return get(); } // NOLINT: implicit, reads as the value
  [[nodiscard]] bool empty() const { return get().empty(); }
  [[nodiscard]] size_t size() const { return get().size(); }
  [[nodiscard]] auto begin() const { return get().begin(); }
  [[nodiscard]] auto end() const { return get().end(); }
  friend bool operator==(const Shared& a, const Shared& b) { return a.get() == b.get(); }
  friend bool operator==(const Shared& a, const T& b) { return a.get() == b; }
  friend bool operator==(const Shared& a, const char* b) requires std::is_same_v<T, std::string> {
    return a.get() == b;
  }
  friend std::ostream& operator<<(std::ostream& out,
                                  const Shared& s) requires std::is_same_v<T, std::string> {
    return out << s.get();
  }

private:
  static const T& none() {
    static const T kEmpty;
    return kEmpty;
  }
  std::shared_ptr<const T> value_;
};

// Where a rule or policy came from, for diagnostics and `corral explain`.
struct Origin {
  Shared<std::string> file;
  int line = 0;
  int column = 0;
  std::string field; // e.g. "spec.process.matchPaths[1]"
};

struct Rule {
  Category category = Category::Process;
  Target target = Target::Path;
  std::string value; // path, dir (ends in '/'), glob, execname, protocol or capability name
  bool recursive = false;
  bool owner_only = false;
  bool read_only = false;
  bool pts_only = false; // `pts: false`: the rule covers only accesses from a terminal (pts)
  std::vector<std::string> allowed_args; // process matchPaths; parsed, not enforced yet
  std::vector<std::string> from_source;  // absolute paths of acting programs; empty = any
  Action action = Action::Block;
  int severity = 1;
  Shared<std::vector<std::string>> tags;
  Shared<std::string> message;
  Origin origin;
};

// `key: label|namespace`, `operator: In|NotIn`, `values`.
struct Expression {
  std::string key;
  bool in = true;
  std::vector<std::string> values;
};

struct Selector {
  Labels match_labels; // for host policies: nodeSelector.matchLabels
  std::vector<Expression> match_expressions;
};

// The annotation that locks a policy's workloads (issue 12).
constexpr const char* kLockAnnotation = "corral.dev/lock";

struct Policy {
  Kind kind = Kind::Policy;
  std::string name;
  std::string namespace_name; // KubeArmorPolicy only ("default" when omitted)
  Selector selector;
  std::vector<Rule> rules;
  Origin origin;
  std::string source; // the document's YAML, re-emitted (what the agent stores)
  // metadata.annotations kubearmor-policy: audited (Corral's per-policy dry run, as the
  // namespace and pod annotation): its rules deny nothing, every deny they cause (a Block
  // rule's, or the default posture's where its Allow rules are the only ones) becomes
  // "Audit (Block)". `corral contain` observes a policy so before it blocks.
  bool dry_run = false;
  // metadata.annotations corral.dev/lock: "true": the policy locks the workloads it selects;
  // other policies can then only narrow what they may do (docs/policy.md "Locked policies").
  bool locked = false;

  // The identity of a policy: (kind, namespace, name).
  [[nodiscard]] std::string key() const;
};

using PolicyPtr = std::shared_ptr<const Policy>;

} // namespace corral::policy
