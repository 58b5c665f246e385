// A security event with KubeArmor's field names (POLICY.md "Events"): an Alert when a
// policy or default posture matched, a Log (Type ContainerLog/HostLog) otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace corral::events {

struct Alert {
  int64_t timestamp = 0;    // unix seconds
  std::string updated_time; // RFC3339 UTC with microseconds
  std::string cluster_name, host_name, namespace_name, pod_name, labels;
  std::string container_id, container_name, container_image;
  int32_t host_ppid = 0, host_pid = 0, ppid = 0, pid = 0, uid = 0;
  std::string parent_process_name, process_name;
  std::string policy_name, severity, tags, message;
  std::vector<std::string> atags;
  std::string type;      // MatchedPolicy | MatchedHostPolicy | ContainerLog | HostLog
  std::string source;    // acting program path + args
  std::string operation; // Process | File | Network | Capabilities
  std::string resource;
  std::string data;     // e.g. fanotify=FAN_OPEN_EXEC_PERM
  std::string enforcer; // fanotify, BPFLSM, ...
  std::string action;
  std::string result; // Passed | Permission denied
  std::string cwd, tty;
  // The node's sequence number (0: not yet published). It orders one node's events and is
  // how corral-relay and `corral logs --grpc` resume without duplicates or gaps: it grows
  // across agent restarts (the hub starts numbering above the microseconds clock and above
  // what its events file holds). Not part of KubeArmor's messages; the events file keeps it.
  uint64_t seq = 0;

  [[nodiscard]] bool is_alert() const { return !policy_name.empty(); }
};

} // namespace corral::events
