#include <cerrno>
#include <cstring>

#include "core/result.h"

namespace corral {

std::string Error::to_string() const {
  std::string out = message;
  if (!hint.empty()) out += " (hint: " + hint + ")";
  return out;
}

Error errno_error(const std::string& what, std::string hint) {
  const int e = errno;
  return Error{what + ": " + std::strerror(e), std::move(hint), e};
}

} // namespace corral
