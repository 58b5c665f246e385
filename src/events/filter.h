// Which events a `corral logs` reader wants (karmor's flags).
#pragma once

#include <string>

#include "events/alert.h"

namespace corral::events {

struct Filter {
  std::string log_filter = "policy"; // policy: alerts; system: logs; all: both
  std::string namespace_name, pod, container, operation;
  std::string resource, source; // substrings

  [[nodiscard]] bool matches(const Alert& a) const;
};

} // namespace corral::events
