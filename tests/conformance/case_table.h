// The conformance table (cases.yaml): policies, workload and access in; verdict and alert
// fields out. Loaded once and judged by several runners (decide() in-process, the CLI, and
// the runtime/VM tiers), so a case means the same thing everywhere.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "policy/model.h"
#include "policy/selector.h"

namespace corral::conformance {

struct PolicyText {
  std::string name; // the key in `policies:`; the runner's file is named after it
  std::string text;
};

struct WorkloadSpec {
  std::string namespace_name = "default";
  policy::Labels labels;
  policy::Labels ns_annotations;
  policy::Labels pod_annotations;
  bool host = false;
  policy::Labels node_labels;
  // Symlinked directories inside the workload's root, e.g. /bin -> /usr/bin (merged /usr).
  // Only the in-process runner can model a root; the CLI suite skips such cases.
  policy::Labels root_symlinks;
};

struct AccessSpec {
  policy::Category category = policy::Category::Process;
  std::string target; // as written in the case, not normalised (the runners do that)
  bool write = false;
  std::string source;
  int uid = 0;
  int file_uid = 0;
  bool new_file = false; // created, changed or moved in after the workload started
  bool pts = false;      // the process is on a terminal (pts)
};

struct Expectation {
  std::optional<std::string> invalid_field; // set: the policies must be rejected
  std::string verdict;                      // allow | deny
  std::string action;
  std::string policy;
  bool alert = false;
  std::optional<std::string> severity;
  std::optional<std::string> message;
  std::optional<std::vector<std::string>> tags;
  std::optional<std::string> rule; // a substring of the explanation
};

struct Case {
  std::string name;
  int line = 0;           // of the case in cases.yaml, for failure messages
  std::string load_error; // set only on the placeholder case of a table that failed to load
  std::vector<PolicyText> policies;
  WorkloadSpec workload;
  policy::Postures defaults;
  AccessSpec access;
  Expectation expect;
};

// What a runner saw, in the terms of `corral explain -o json`.
struct Observed {
  bool rejected = false;   // the policies did not parse
  std::string diagnostics; // every diagnostic, one per line
  std::string verdict;
  std::string action;
  std::string policy;
  std::string severity;
  std::string message;
  std::vector<std::string> tags;
  bool alert = false;
  std::string rule;
};

// The cases of `path`; on any error, one placeholder case carrying it, so that the error
// is reported as a failing test rather than as an empty (and passing) suite.
std::vector<Case> load_cases(const std::string& path);

// The table every runner uses: $CORRAL_CONFORMANCE_CASES, else `default_path`. Loaded once.
const std::vector<Case>& cases(const char* default_path);

// Each way `seen` differs from `c.expect`; empty when the case passes.
std::vector<std::string> mismatches(const Case& c, const Observed& seen);

// "name (cases.yaml:LINE)"
std::string describe(const Case& c);

// A gtest-safe test name: the case name with every character other than [A-Za-z0-9] as '_'.
std::string test_name(const Case& c);

// gtest prints parameters with this; the default would dump the struct's bytes.
void PrintTo(const Case& c, std::ostream* os);

} // namespace corral::conformance
