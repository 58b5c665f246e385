// What `corral discover`, `corral profile` and `corral contain` share: finding one workload
// by name, reading what it did from the agent, and writing the least-permissive policy
// that lets it go on doing that.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "corral.grpc.pb.h"

namespace corral::cli {

// "90s", "10m", "1h30m", "2d" → seconds; an error names the value and the form.
Result<int64_t> parse_duration(const std::string& text, const std::string& flag);

struct ProfileQuery {
  std::string namespace_name; // "" = all
  std::string pod, container;
  bool running = false; // add what runs now (/proc)
  int64_t since = 0;    // unix s
};
// The profiles matching the query, or an error status already printed as "corral CMD: ...".
std::optional<api::ProfileReply> read_profiles(api::Agent::Stub& stub, const ProfileQuery& q,
                                               const char* command, const std::string& socket);

// The one workload named `name` (its container name, pod name, or id / id prefix of 12+
// characters) in `namespace_name` ("" = any); an Error lists what is there otherwise.
Result<api::WorkloadProfile> pick_workload(const api::ProfileReply& reply, const std::string& name,
                                           const std::string& namespace_name);

struct DiscoveredPolicy {
  std::string name;
  bool dry_run = false;                           // metadata.annotations kubearmor-policy: audited
  std::map<std::string, std::string> annotations; // more metadata.annotations
};
// The least-permissive KubeArmorPolicy for the workload's profile: its programs, the
// directories of the files it opened, the protocols it used; a comment on each rule says
// where it came from. An Error when the workload cannot be selected (no labels) or nothing
// was seen to run.
Result<std::string> policy_yaml(const api::WorkloadProfile& p, const DiscoveredPolicy& d);
Result<nlohmann::ordered_json> policy_json(const api::WorkloadProfile& p,
                                           const DiscoveredPolicy& d);
// The default name: corral-<container name>, cut to a valid object name.
std::string discovered_name(const api::WorkloadProfile& p, const std::string& prefix);

} // namespace corral::cli
