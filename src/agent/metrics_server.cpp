#include "agent/metrics_server.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include <httplib.h>
#include <sys/socket.h>

#include "agent/agent.h"
#include "events/hub.h"
#include "monitor/monitor.h"

namespace corral::agent {
namespace {

constexpr const char* kListenHint = "HOST:PORT of an address of this node that is free, e.g. "
                                    "127.0.0.1:9090 (port 0: any free port)";

void fill_enforcer(const Agent& agent, const std::vector<WorkloadView>& workloads,
                   metrics::Snapshot& s) {
  const auto* e = agent.enforcer();
  if (e == nullptr) return;
  const auto n = e->counters();
  s.enforcer = true;
  s.permission_answered = n.events;
  s.permission_denied = n.denied;
  s.errors_allowed = n.errors_allowed;
  s.errors_denied = n.errors_denied;
  s.timeouts_allowed = n.timeouts_allowed;
  s.timeouts_denied = n.timeouts_denied;
  s.decision_latency = n.decision_latency;
  s.workloads_enforced = enforced_workloads(n.enforced, workloads);
}

} // namespace

metrics::Snapshot collect_metrics(const MetricsSources& src) {
  metrics::Snapshot s;
  if (src.events != nullptr) s.events = src.events->rows();
  if (src.agent != nullptr) {
    const auto workloads = src.agent->workloads("");
    s.workloads = workloads.size();
    s.policies = src.agent->policies("").size();
    fill_enforcer(*src.agent, workloads, s);
    if (const auto k = src.agent->kubernetes_status()) {
      s.kube_watch_restarts = k->watch_restarts;
      s.kube_relists = k->relists;
    }
  }
  if (src.hub != nullptr) {
    s.alerts_evicted = src.hub->evicted();
    s.logs_evicted = src.hub->logs_evicted();
  }
  if (src.monitor != nullptr) {
    const auto st = src.monitor->stats();
    const char* kinds[] = {"", "fork", "exec", "exit", "file", "network"};
    static_assert(std::size(kinds) == monitor::kKinds);
    for (size_t k = 1; k < monitor::kKinds; ++k)
      s.monitor_dropped.emplace_back(kinds[k], st.dropped[k]);
  }
  return s;
}

Result<std::pair<std::string, int>> parse_listen(const std::string& listen) {
  const auto bad = [&](const std::string& why) -> Error {
    return Error{"--metrics-listen " + listen + ": " + why, kListenHint, 0};
  };
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("not HOST:PORT");
  std::string host = listen.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return bad("an IPv6 host needs both brackets");
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = listen.substr(colon + 1);
  int port = -1;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return bad("port \"" + port_text + "\" is not a number from 0 to 65535");
  }
  return std::pair{host, port};
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(Options options,
                                                            MetricsSources sources) {
  auto where = parse_listen(options.listen);
  if (!where) return where.error();
  const auto& [host, port] = *where;
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->server_ = std::make_unique<httplib::Server>();
  auto& svr = *m->server_;
  // Not httplib's default SO_REUSEPORT: a port another process holds must fail to bind.
  svr.set_socket_options([](socket_t fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // Two threads serve scrapers (a slow one does not hold up another for long).
  svr.new_task_queue = [] { return new httplib::ThreadPool(2); };
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_payload_max_length(4096);
  svr.Get("/metrics", [sources](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics::render(collect_metrics(sources)), metrics::kContentType);
  });
  if (port == 0) {
    m->port_ = svr.bind_to_any_port(host);
  } else if (svr.bind_to_port(host, port)) {
    m->port_ = port;
  }
  const bool bound = m->port_ > 0;
  if (!bound) {
    return Error{"--metrics-listen " + options.listen +
                     ": cannot listen there (the address is not this node's, or the port is "
                     "in use)",
                 kListenHint, 0};
  }
  m->thread_ = std::thread([&svr, log = options.log] {
    if (!svr.listen_after_bind() && log) log("metrics: the HTTP server stopped on an error");
  });
  // stop() only stops a server that runs: wait until it does (a moment).
  for (int i = 0; i < 1000 && !svr.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return m;
}

void MetricsServer::shutdown() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

MetricsServer::~MetricsServer() {
  shutdown();
}

} // namespace corral::agent
