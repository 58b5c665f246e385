// The agent's metrics in the Prometheus text exposition format, version 0.0.4 (issue 11):
// what they are (Snapshot), how events are counted where they are published (EventCounts),
// and the rendering. Pure, no I/O: agent/metrics_server.h collects a Snapshot from the
// agent's parts and serves it over HTTP.
//
// Format facts relied on (prometheus.io/docs/instrumenting/exposition_formats): one
// `# HELP` and one `# TYPE` line per family before its samples; label values escape `\`,
// `"` and newline; HELP text escapes `\` and newline; a histogram has cumulative
// `_bucket{le="..."}` samples ending with `le="+Inf"` (equal to `_count`), then `_sum` and
// `_count`.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/histogram.h"
#include "events/alert.h"

namespace corral::agent::metrics {

// Every event published, by (Type, Operation, Action). Called on the publishing threads
// (after the kernel was answered): one short lock and, for a combination already seen,
// no allocation. The combinations are few (4 types x 4 operations x a few actions).
class EventCounts {
public:
  struct Row {
    std::string type, operation, action;
    uint64_t count = 0;
  };
  void count(const events::Alert& a);
  [[nodiscard]] std::vector<Row> rows() const;

private:
  mutable std::mutex mu_;
  std::vector<Row> rows_;
};

struct Snapshot {
  std::vector<EventCounts::Row> events;
  bool enforcer = false; // a backend answers permission events (else their families are absent)
  uint64_t permission_answered = 0, permission_denied = 0;
  uint64_t errors_allowed = 0, errors_denied = 0;
  uint64_t timeouts_allowed = 0, timeouts_denied = 0;
  LatencyHistogram::Snapshot decision_latency;
  // The system monitor's ring-buffer (or BPF map) drops by kind ("fork", "exec", ...);
  // empty when the monitor does not run.
  std::vector<std::pair<std::string, uint64_t>> monitor_dropped;
  uint64_t alerts_evicted = 0, logs_evicted = 0; // from the event hub's in-memory rings
  uint64_t workloads = 0, workloads_enforced = 0, policies = 0;
  uint64_t kube_watch_restarts = 0, kube_relists = 0; // 0 outside Kubernetes mode
};

// The exposition of `s`, every line ending in '\n'.
std::string render(const Snapshot& s);

// A label value as the format writes it between quotes.
std::string escape_label_value(std::string_view v);

// The Content-Type of render()'s text.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

} // namespace corral::agent::metrics
