// Parsing and validation of KubeArmor policy YAML (POLICY.md). Pure: reads only the text
// it is given. A document with any error yields no policy; all its errors are reported.
#pragma once

#include <string_view>
#include <vector>

#include "policy/diagnostic.h"
#include "policy/model.h"

namespace corral::policy {

struct ParseResult {
  std::vector<PolicyPtr> policies; // only documents without errors
  std::vector<Diagnostic> diagnostics;

  [[nodiscard]] bool ok() const { return !has_errors(diagnostics); }
};

// Parses every document of `text`; `file` names the input in diagnostics.
ParseResult parse_policies(std::string_view text, std::string_view file);

// Inputs larger than this are refused before parsing (policies are a few KiB; a generated
// one of 100,000 rules is ~5.5 MiB).
constexpr size_t kMaxPolicyBytes = 16 * 1024 * 1024;
// The most `corral apply` sends in one request, all files together: the agent's API accepts
// messages up to this size (gRPC's default, 4 MiB, refused a 100,000-rule policy).
constexpr size_t kMaxApplyBytes = 4 * kMaxPolicyBytes;

} // namespace corral::policy
