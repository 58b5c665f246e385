// `corrald --metrics-listen HOST:PORT` (issue 11): GET /metrics answers the agent's
// metrics (agent/metrics.h) in the Prometheus text format; every other path is 404.
//
// The HTTP server (cpp-httplib) runs on threads of its own. A scrape reads atomics and
// takes only the short locks `corral get status` takes (the agent's tables, the hub's ring
// counts): it never waits on, nor delays, a permission event's answer.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/metrics.h"
#include "core/result.h"

namespace httplib {
class Server;
}
namespace corral::events {
class EventHub;
}
namespace corral::monitor {
class Monitor;
}

namespace corral::agent {

class Agent;

// Where a Snapshot's figures come from; the pointers outlive the server. `monitor` and
// `events` may be null.
struct MetricsSources {
  const Agent* agent = nullptr;
  const events::EventHub* hub = nullptr;
  const monitor::Monitor* monitor = nullptr;
  const metrics::EventCounts* events = nullptr;
};
metrics::Snapshot collect_metrics(const MetricsSources& s);

class MetricsServer {
public:
  struct Options {
    std::string listen; // HOST:PORT; port 0: the kernel chooses (port() says which)
    std::function<void(const std::string&)> log;
  };
  static Result<std::unique_ptr<MetricsServer>> start(Options options, MetricsSources sources);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  void shutdown();
  [[nodiscard]] int port() const { return port_; }

private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// HOST:PORT split (an IPv6 host in brackets: [::1]:9090); an Error names the flag's value.
Result<std::pair<std::string, int>> parse_listen(const std::string& listen);

} // namespace corral::agent
