#include "events/fields.h"

#include <array>

namespace corral::events {

std::span<const StringField> string_fields() {
  static const std::array<StringField, 24> kFields = {{
      {"UpdatedTime", &Alert::updated_time, true},
      {"ClusterName", &Alert::cluster_name, true},
      {"HostName", &Alert::host_name, true},
      {"NamespaceName", &Alert::namespace_name, true},
      {"PodName", &Alert::pod_name, true},
      {"Labels", &Alert::labels, true},
      {"ContainerID", &Alert::container_id, true},
      {"ContainerName", &Alert::container_name, true},
      {"ContainerImage", &Alert::container_image, true},
      {"ParentProcessName", &Alert::parent_process_name, true},
      {"ProcessName", &Alert::process_name, true},
      {"PolicyName", &Alert::policy_name, false},
      {"Severity", &Alert::severity, false},
      {"Tags", &Alert::tags, false},
      {"Message", &Alert::message, false},
      {"Type", &Alert::type, true},
      {"Source", &Alert::source, true},
      {"Operation", &Alert::operation, true},
      {"Resource", &Alert::resource, true},
      {"Data", &Alert::data, true},
      {"Enforcer", &Alert::enforcer, false},
      {"Action", &Alert::action, false},
      {"Result", &Alert::result, true},
      {"Cwd", &Alert::cwd, true},
  }};
  return kFields;
}

std::span<const IntField> int_fields() {
  static const std::array<IntField, 5> kFields = {{
      {"HostPPID", &Alert::host_ppid},
      {"HostPID", &Alert::host_pid},
      {"PPID", &Alert::ppid},
      {"PID", &Alert::pid},
      {"UID", &Alert::uid},
  }};
  return kFields;
}

} // namespace corral::events
