#include "agent/metrics.h"

#include <cstdio>
#include <initializer_list>

namespace corral::agent::metrics {
namespace {

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class Writer {
public:
  void family(std::string_view name, std::string_view help, std::string_view type) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, Labels labels, std::string_view value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label_value(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, Labels labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  // A family of one unlabelled sample.
  void single(std::string_view name, std::string_view help, std::string_view type, uint64_t v) {
    family(name, help, type);
    sample(name, {}, v);
  }
  std::string take() { return std::move(out_); }

private:
  std::string out_;
};

// Seconds as the shortest decimal that reads back exactly enough ("1e-05", "0.0025", "0.1").
std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", s);
  return buf;
}

void render_permission(Writer& w, const Snapshot& s) {
  w.single("corral_permission_events_answered_total",
           "Permission events (fanotify) answered, whatever the verdict", "counter",
           s.permission_answered);
  w.single("corral_permission_events_denied_total", "Permission events answered with deny",
           "counter", s.permission_denied);
  w.family("corral_permission_events_on_error_total",
           "Permission events the agent could not judge (internal error), by the verdict the "
           "kernel got: allow under audit or a block-list, deny under an allow-list with "
           "posture block",
           "counter");
  w.sample("corral_permission_events_on_error_total", {{"verdict", "allow"}}, s.errors_allowed);
  w.sample("corral_permission_events_on_error_total", {{"verdict", "deny"}}, s.errors_denied);
  w.family("corral_permission_events_timed_out_total",
           "Permission events not decided within --reply-bound-ms, by the verdict the kernel got",
           "counter");
  w.sample("corral_permission_events_timed_out_total", {{"verdict", "allow"}}, s.timeouts_allowed);
  w.sample("corral_permission_events_timed_out_total", {{"verdict", "deny"}}, s.timeouts_denied);

  constexpr std::string_view h = "corral_permission_decision_seconds";
  w.family(h, "Time from reading a permission event off its fanotify group to writing the answer",
           "histogram");
  const auto& l = s.decision_latency;
  for (size_t i = 0; i < LatencyHistogram::kBoundsNs.size(); ++i) {
    w.sample("corral_permission_decision_seconds_bucket",
             {{"le", seconds(static_cast<double>(LatencyHistogram::kBoundsNs[i]) / 1e9)}},
             l.cumulative[i]);
  }
  w.sample("corral_permission_decision_seconds_bucket", {{"le", "+Inf"}}, l.count);
  w.sample("corral_permission_decision_seconds_sum", {},
           seconds(static_cast<double>(l.sum_ns) / 1e9));
  w.sample("corral_permission_decision_seconds_count", {}, l.count);
}

} // namespace

void EventCounts::count(const events::Alert& a) {
  std::lock_guard lock(mu_);
  for (auto& r : rows_) {
    if (r.type == a.type && r.operation == a.operation && r.action == a.action) {
      ++r.count;
      return;
    }
  }
  rows_.push_back(Row{a.type, a.operation, a.action, 1});
}

std::vector<EventCounts::Row> EventCounts::rows() const {
  std::lock_guard lock(mu_);
  return rows_;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render(const Snapshot& s) {
  Writer w;
  w.family("corral_events_total",
           "Events published (alerts and visibility logs), by Type, Operation and Action",
           "counter");
  for (const auto& r : s.events) {
    w.sample("corral_events_total",
             {{"type", r.type}, {"operation", r.operation}, {"action", r.action}}, r.count);
  }
  if (s.enforcer) render_permission(w, s);
  if (!s.monitor_dropped.empty()) {
    w.family("corral_monitor_dropped_total",
             "System monitor events lost in the kernel (ring buffer or map full), by kind",
             "counter");
    for (const auto& [kind, n] : s.monitor_dropped)
      w.sample("corral_monitor_dropped_total", {{"kind", kind}}, n);
  }
  w.family("corral_events_evicted_total",
           "Events evicted from the agent's in-memory rings (--ring-size) by newer ones, by ring",
           "counter");
  w.sample("corral_events_evicted_total", {{"ring", "alerts"}}, s.alerts_evicted);
  w.sample("corral_events_evicted_total", {{"ring", "logs"}}, s.logs_evicted);
  w.single("corral_workloads", "Workloads (containers) known to the agent", "gauge", s.workloads);
  w.single("corral_workloads_enforced",
           "Workloads whose enforcement hooks are in place (less those proven not enforced)",
           "gauge", s.workloads_enforced);
  w.single("corral_policies", "Policies loaded", "gauge", s.policies);
  w.single("corral_kubernetes_watch_restarts_total",
           "Kubernetes API watches restarted (0 outside Kubernetes mode)", "counter",
           s.kube_watch_restarts);
  w.single("corral_kubernetes_relists_total",
           "Kubernetes API lists made again after a watch could not resume (0 outside "
           "Kubernetes mode)",
           "counter", s.kube_relists);
  return w.take();
}

} // namespace corral::agent::metrics
