// The policy model: KubeArmor's three policy kinds after parsing and normalisation
// (see POLICY.md). Every field a rule can inherit is already resolved here.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
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

// Where a rule or policy came from, for diagnostics and `corral explain`.
struct Origin {
  std::string file;
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
  std::vector<std::string> tags;
  std::string message;
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

struct Policy {
  Kind kind = Kind::Policy;
  std::string name;
  std::string namespace_name; // KubeArmorPolicy only ("default" when omitted)
  Selector selector;
  std::vector<Rule> rules;
  Origin origin;
  std::string source; // the document's YAML, re-emitted (what the agent stores)

  // The identity of a policy: (kind, namespace, name).
  [[nodiscard]] std::string key() const;
};

using PolicyPtr = std::shared_ptr<const Policy>;

} // namespace corral::policy
