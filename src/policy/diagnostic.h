// A user-facing finding about policy input: where (file:line:column and field path),
// what is wrong, and a hint.
#pragma once

#include <string>
#include <vector>

namespace corral::policy {

struct Diagnostic {
  enum class Level { Error, Warning };
  Level level = Level::Error;
  std::string file;
  int line = 0; // 1-based; 0 = unknown
  int column = 0;
  std::string field; // e.g. "spec.process.matchPaths[1].path"
  std::string reason;
  std::string hint;

  // "file:line:col: error: field: reason (hint: ...)"
  [[nodiscard]] std::string to_string() const;
};

bool has_errors(const std::vector<Diagnostic>& diagnostics);

} // namespace corral::policy
