// `corral probe`: what it found, as one value rendered as text (probe_text.cpp) or JSON
// (probe.cpp, schema docs/probe.schema.json).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "corral.pb.h"
#include "probe/probe.h"

namespace corral::cli {

// The agent as the probe sees it through its socket.
struct AgentView {
  std::string socket{};
  bool running = false;
  std::string error{}; // why it is not reachable; empty when running
  api::StatusReply status{};
  api::WorkloadList workloads{};
};

struct ProbeView {
  std::string host{};
  probe::Report report{};
  AgentView agent{};
};

nlohmann::ordered_json to_json(const ProbeView& v);
// `fancy`: ✓/✗ for a terminal; otherwise [ok]/[--] (pipes, files, logs).
std::string to_text(const ProbeView& v, bool full, bool fancy);

} // namespace corral::cli
