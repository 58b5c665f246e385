// Helpers shared by the parser tests: parse a YAML text and check its diagnostics.
#pragma once

#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "policy/parser.h"

namespace corral::policy::testing {

// The file name every test text is parsed under; diagnostics start with it.
inline constexpr std::string_view kFile = "p.yaml";

// Raw string literals in the tests start with a newline so that the YAML lines up with
// the code; dropping it makes line 1 the first line of YAML.
inline std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

inline ParseResult parse(std::string_view text) {
  return parse_policies(text, kFile);
}

// Every diagnostic, one per line, for failure messages.
inline std::string dump(const ParseResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += "  " + d.to_string() + "\n";
  return out.empty() ? "  (no diagnostics)\n" : out;
}

// Succeeds when `r` has an error for `field` at `line`:`column` whose reason contains
// `reason` and whose hint contains `hint`.
inline ::testing::AssertionResult has_error(const ParseResult& r, std::string_view field, int line,
                                            int column, std::string_view reason,
                                            std::string_view hint = {}) {
  for (const auto& d : r.diagnostics) {
    if (d.level == Diagnostic::Level::Error && d.field == field && d.line == line &&
        d.column == column && d.reason.find(reason) != std::string::npos &&
        d.hint.find(hint) != std::string::npos && d.file == kFile)
      return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "no error " << line << ":" << column << " " << field << ": ..." << reason
         << "... (hint: ..." << hint << "...) among:\n"
         << dump(r);
}

// The policy header and a selector; the spec's sections follow from line 9 on.
inline std::string policy_with(std::string_view sections) {
  return yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: test
spec:
  selector:
    matchLabels:
      app: nginx
)") + yaml(sections);
}

} // namespace corral::policy::testing
