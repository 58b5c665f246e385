#include "events/filter.h"

#include "core/strings.h"

namespace corral::events {

bool Filter::matches(const Alert& a) const {
  if (log_filter == "policy" && !a.is_alert()) return false;
  if (log_filter == "system" && a.is_alert()) return false;
  const auto equal = [](const std::string& want, const std::string& have) {
    return want.empty() || want == have;
  };
  const auto contains = [](const std::string& want, const std::string& have) {
    return want.empty() || have.find(want) != std::string::npos;
  };
  return equal(namespace_name, a.namespace_name) && equal(pod, a.pod_name) &&
         (container.empty() || container == a.container_name || container == a.container_id) &&
         (operation.empty() || to_lower(operation) == to_lower(a.operation)) &&
         contains(resource, a.resource) && contains(source, a.source);
}

} // namespace corral::events
