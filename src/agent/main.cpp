// corrald: the Corral node agent. Discovers workloads (containerd), holds policies, enforces
// them in the kernel, keeps the events, and serves the CLI's API on a unix socket.
#include <csignal>
#include <future>
#include <iostream>
#include <mutex>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/api_server.h"
#include "core/version.h"
#include "enforce/fanotify/fanotify_enforcer.h"
#include "events/format.h"
#include "workload/containerd/containerd_source.h"

namespace {

using namespace corral;

struct Flags {
  std::string containerd_socket = "/run/containerd/containerd.sock";
  std::string api_socket = "/run/corral/corral.sock";
  std::string state_dir = "/var/lib/corral";
  std::string enforcer = "auto";
  std::string events_file;
  std::string file_posture = "audit", network_posture = "audit", capabilities_posture = "audit";
  std::string cluster_name = "default";
  size_t ring_size = 10000;
};

void log(const std::string& msg) {
  std::cerr << "corrald: " << msg << std::endl;
}

policy::Posture posture(const std::string& s) {
  return s == "block" ? policy::Posture::Block : policy::Posture::Audit;
}

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<enforce::Enforcer>> make_enforcer(const Flags& f, events::EventHub& hub,
                                                         const agent::AgentConfig& c) {
  if (f.enforcer == "none") return std::unique_ptr<enforce::Enforcer>();
  enforce::FanotifyEnforcer::Options o;
  // Runs on the enforcement thread after the kernel was answered.
  o.sink = [&hub, cluster = c.cluster_name, host = c.host_name](events::Alert&& a) {
    a.cluster_name = cluster;
    a.host_name = host;
    hub.publish(std::move(a));
  };
  o.log = log;
  auto e = enforce::FanotifyEnforcer::make(std::move(o));
  if (!e) {
    if (f.enforcer == "auto") {
      log("no enforcer available, running in audit-less mode: " + e.error().to_string());
      return std::unique_ptr<enforce::Enforcer>();
    }
    return e.error();
  }
  return std::unique_ptr<enforce::Enforcer>(std::move(*e));
}

int run(const Flags& f) {
  // Signals are taken by sigwait in main; every thread started below inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  agent::AgentConfig config;
  config.default_postures = {posture(f.file_posture), posture(f.network_posture),
                             posture(f.capabilities_posture)};
  config.cluster_name = f.cluster_name;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  config.host_name = host;

  auto hub = events::EventHub::make(f.ring_size, f.events_file);
  if (!hub) return log(hub.error().to_string()), 1;
  auto store = agent::StateStore::make(f.state_dir);
  if (!store) return log(store.error().to_string()), 1;
  auto enforcer = make_enforcer(f, **hub, config);
  if (!enforcer) return log(enforcer.error().to_string()), 1;

  agent::Agent agent(config, **store, enforcer->get(), log);
  if (auto r = agent.restore(); !r) return log(r.error().to_string()), 1;

  workload::ContainerdSource::Options so;
  so.socket = f.containerd_socket;
  so.upsert = [&agent](const workload::Workload& w) { agent.upsert_workload(w); };
  so.remove = [&agent](const std::string& id) { agent.remove_workload(id); };
  so.log = log;
  std::promise<void> first_sync;
  std::once_flag once;
  so.synced = [&] { std::call_once(once, [&] { first_sync.set_value(); }); };
  auto synced = first_sync.get_future();
  auto source = workload::ContainerdSource::make(std::move(so));
  if (!source) return log(source.error().to_string()), 1;
  // Enforce what is already running before the API answers. containerd may not be up yet
  // (the source retries for its whole life): then serve anyway after a bound.
  if (synced.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    log("containerd at " + f.containerd_socket +
        " has not answered yet; serving the API, "
        "its workloads are enforced as soon as it does");
  }

  auto api = agent::ApiServer::make(f.api_socket, agent, **hub, now_micros() / 1000000);
  if (!api) return log(api.error().to_string()), 1;
  log(std::string("corrald ") + kVersion + " serving unix:" + f.api_socket + ", enforcer " +
      (*enforcer ? std::string((*enforcer)->name()) : "none"));

  int sig = 0;
  sigwait(&signals, &sig);
  log(std::string("stopping on ") + strsignal(sig));
  (*api)->shutdown();
  (*source)->stop();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"corrald - the Corral node agent: enforces KubeArmor policies on the containers "
               "of this node (fanotify), logs every violation, serves the corral CLI."};
  app.name("corrald");
  Flags f;
  const std::vector<std::string> postures{"audit", "block"};
  app.add_option("--containerd-socket", f.containerd_socket, "containerd's gRPC socket")
      ->capture_default_str();
  app.add_option("--api-socket", f.api_socket, "The CLI's socket (created with mode 0600)")
      ->capture_default_str();
  app.add_option("--state-dir", f.state_dir, "Where applied policies and annotations are kept")
      ->capture_default_str();
  app.add_option("--enforcer", f.enforcer,
                 "auto, fanotify or none (audit nothing, enforce "
                 "nothing: workloads and policies only)")
      ->check(CLI::IsMember({"auto", "fanotify", "none"}))
      ->capture_default_str();
  app.add_option("--events-file", f.events_file, "Append every event here as a JSON line");
  app.add_option("--default-file-posture", f.file_posture, "Posture for process and file rules")
      ->check(CLI::IsMember(postures))
      ->capture_default_str();
  app.add_option("--default-network-posture", f.network_posture, "Posture for network rules")
      ->check(CLI::IsMember(postures))
      ->capture_default_str();
  app.add_option("--default-capabilities-posture", f.capabilities_posture,
                 "Posture for capability rules")
      ->check(CLI::IsMember(postures))
      ->capture_default_str();
  app.add_option("--cluster-name", f.cluster_name, "ClusterName in events")->capture_default_str();
  app.add_option("--ring-size", f.ring_size, "Events kept in memory for `corral logs`")
      ->capture_default_str();
  app.footer("Example: corrald --events-file /var/log/corral/events.jsonl "
             "--default-file-posture audit");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::cerr << "corrald: must run as root (fanotify permission events and containerd's socket "
                 "need it)\n";
    return 1;
  }
  return run(f);
}
