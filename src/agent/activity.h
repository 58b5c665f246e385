// What workloads do (issue 10), from the system monitor's events: visibility logs
// (Type ContainerLog/HostLog) for workloads whose kubearmor-visibility asks for them, and a
// profile per workload (programs run, files opened, connections, each with a count and
// first and last time) for `corral profile` and `corral discover`.
//
// Events are matched to workloads by cgroup v2 id (the kernel filters file and network
// events by it too), then by pid namespace. Runs on the monitor's thread; the agent hands
// it a new list of workloads whenever one changes, so an event never waits on the agent.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/agent.h"
#include "agent/metrics.h"
#include "core/result.h"
#include "events/hub.h"
#include "monitor/monitor.h"

namespace corral::agent {

// kubearmor-visibility's items.
enum Visibility : unsigned {
  kSeeProcess = 1,
  kSeeFile = 2,
  kSeeNetwork = 4,
  kSeeCapabilities = 8,
};
// "process,file" → kSeeProcess|kSeeFile; "none" or "" → 0; an unknown item → nullopt.
std::optional<unsigned> parse_visibility(const std::string& value);
std::string visibility_text(unsigned mask); // "process,file" or "none"

// One thing seen, with how often and when (unix seconds).
struct Seen {
  uint64_t count = 0;
  int64_t first = 0, last = 0;
  std::string protocol; // network items: tcp, udp, icmp, raw, ...
  bool changed = false; // processes: the file is not as the image shipped it (mark_changed)
};

struct WorkloadActivity {
  std::map<std::string, Seen> processes; // program path inside the workload
  std::map<std::string, Seen> files;     // path opened (only while file events are recorded)
  std::map<std::string, Seen> network;   // "tcp connect 10.0.0.1:80", "udp bind 0.0.0.0:53"
  int64_t since = 0;                     // recorded since (unix s)
  uint64_t not_kept = 0;                 // items beyond the bounds, counted only
  bool files_recorded = false;           // file events were asked of the kernel at some time
  bool network_recorded = false;
};

class Activity {
public:
  struct Options {
    events::EventHub* hub = nullptr;
    metrics::EventCounts* counts = nullptr; // counts every log published (--metrics-listen)
    // Each log, also handed here before it is published (corrald: the OTLP exporter).
    std::function<void(const events::Alert&)> tee;
    std::string cluster_name, host_name;
    unsigned host_visibility = 0; // HostLog for processes outside every workload
    // Asks the kernel for file/network events of a cgroup (monitor::set_visibility).
    std::function<void(uint64_t cgroup, unsigned mask)> kernel_visibility;
    // The monitor's process tree, for parents.
    std::function<std::optional<monitor::Process>(int tgid)> process;
    size_t max_items = 4096; // per workload and kind
  };
  explicit Activity(Options options);

  // The running workloads and their visibility (the agent calls it on every change).
  void set_workloads(const std::vector<WatchedWorkload>& watched);
  // Called by the monitor for every event.
  void on_event(const monitor::Event& e);
  // What the workload did since `since` (unix s; 0: everything kept).
  [[nodiscard]] std::optional<WorkloadActivity> activity(const std::string& workload_id,
                                                         int64_t since) const;

private:
  struct Watched {
    workload::Workload w;
    unsigned visibility = 0;
    std::string root_prefix; // readlink of the workload's /proc/<pid>/root
    std::string labels;      // k=v,k=v
  };
  std::shared_ptr<const Watched> find_locked(const monitor::Process& p) const;
  void record_locked(const Watched& w, std::map<std::string, Seen> WorkloadActivity::*kind,
                     const std::string& key, const std::string& protocol, int64_t now);
  events::Alert log_of(const Watched* w, const monitor::Process& p, int64_t now_micros) const;

  Options options_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<const Watched>> by_cgroup_;
  std::unordered_map<uint64_t, std::shared_ptr<const Watched>> by_pidns_;
  std::map<std::string, WorkloadActivity> activity_; // by workload id
  std::map<uint64_t, unsigned> kernel_;              // cgroup -> mask asked of the kernel
};

// What the workload runs and has open now, from /proc (its processes share its pid
// namespace): programs, mapped files and open files, and sockets with their protocols.
// Fills `a` as if seen once now (count 0 for items first seen here).
void add_running(const workload::Workload& w, WorkloadActivity& a);

// Marks the programs whose file (inside the workload's root) was created, changed or moved
// in after the workload started: a program the attacker wrote is never one to allow.
void mark_changed(const workload::Workload& w, WorkloadActivity& a);

} // namespace corral::agent
