#include "policy/diagnostic.h"

#include <algorithm>

namespace corral::policy {

std::string Diagnostic::to_string() const {
  std::string out = file.empty() ? "<input>" : file;
  if (line > 0) out += ':' + std::to_string(line) + ':' + std::to_string(column);
  out += level == Level::Error ? ": error: " : ": warning: ";
  if (!field.empty()) out += field + ": ";
  out += reason;
  if (!hint.empty()) out += " (hint: " + hint + ")";
  return out;
}

bool has_errors(const std::vector<Diagnostic>& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.level == Diagnostic::Level::Error; });
}

} // namespace corral::policy
