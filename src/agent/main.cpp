// corrald: the Corral node agent. Discovers workloads (containerd), holds policies, enforces
// them in the kernel, keeps the events, and serves the CLI's API on a unix socket.
#include <csignal>
#include <cstdlib>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>
#include <tuple>

#include <CLI/CLI.hpp>
#include <grp.h>
#include <unistd.h>

#include "agent/activity.h"
#include "agent/agent.h"
#include "agent/api_server.h"
#include "agent/fd_holder.h"
#include "agent/held_rules.h"
#include "agent/host_namespaces.h"
#include "agent/kernel_limits.h"
#include "agent/kube_source.h"
#include "agent/metrics_server.h"
#include "core/memory.h"
#include "core/version.h"
#include "enforce/capabilities/capability_enforcer.h"
#include "enforce/cgroupnet/cgroupnet_enforcer.h"
#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/fanotify_enforcer.h"
#include "events/format.h"
#include "events/otlp.h"
#include "feed/server.h"
#include "monitor/monitor.h"
#include "workload/containerd/containerd_source.h"

namespace {

using namespace corral;

struct Flags {
  std::string containerd_socket = "/run/containerd/containerd.sock";
  std::string api_socket = "/run/corral/corral.sock";
  std::string state_dir = "/var/lib/corral";
  std::string enforcer = "auto";
  std::string events_file;
  std::string events_file_group; // readers of the events file (0640); empty: root only
  std::string file_posture = "audit", network_posture = "audit", capabilities_posture = "audit";
  std::string cluster_name = "default";
  size_t ring_size = 10000;
  int hold_seconds = 10;
  std::string exec_backstop = "auto";
  std::string network_enforcer = "auto";
  bool kill_on_blocked_capability = false;
  int reply_bound_ms = 200;
  size_t responder_threads = 2;
  int test_stall_ms = 0; // tests only: every event stalls this long once its path is known
  size_t max_workloads = 1024;
  size_t test_max_groups = 0;         // tests only: refuse to build more groups than this
  int test_delay_created_ms = 0;      // tests only: a just-created task is handled this late
  bool test_no_host_cgroupns = false; // tests only: stay in the container's cgroup namespace
  std::string monitor = "auto";
  std::string visibility = "none", host_visibility = "none";
  std::string grpc_listen; // KubeArmor's feeder.LogService on the network; "" = off
  feed::TlsFiles grpc_tls;
  std::string otlp_endpoint; // an OTLP/HTTP receiver of every event; "" = off
  std::string kubernetes = "auto";
  std::string kubeconfig;
  std::string node_name;
  std::string serviceaccount_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // Prometheus metrics over HTTP (agent/metrics_server.h); "" = off.
  std::string metrics_listen;
};

// Kubernetes mode (agent/kube_source.h): on when asked, or (auto) when a kubeconfig is
// given or the in-cluster configuration is present. Returns no config when off.
Result<std::optional<kube::Config>> kubernetes_config(const Flags& f) {
  if (f.kubernetes == "off") return std::optional<kube::Config>();
  if (!f.kubeconfig.empty()) {
    auto c = kube::kubeconfig_config(f.kubeconfig);
    if (!c) return c.error();
    return std::optional<kube::Config>(std::move(*c));
  }
  if (f.kubernetes == "auto" && !kube::in_cluster_present(f.serviceaccount_dir))
    return std::optional<kube::Config>();
  auto c = kube::in_cluster_config(f.serviceaccount_dir);
  if (!c) return c.error();
  return std::optional<kube::Config>(std::move(*c));
}

std::string node_name(const Flags& f) {
  if (!f.node_name.empty()) return f.node_name;
  if (const char* n = std::getenv("NODE_NAME"); n != nullptr && *n != '\0') return n;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

// Mount marks a workload's group may need: a mark per mount, 64 covering a pod's containers.
constexpr uint64_t kMarksPerWorkload = 64;

// What `max_workloads` enforced workloads need (kernel_limits.h): a group each and a second
// while its rules change; their mount marks plus the cached allows of all of them
// (FanotifyEnforcer::Options::max_cached_total); three fds per group (the agent's, the fd
// holder's, an event's) and room for the rest.

agent::LimitWants limit_wants(const Flags& f, size_t max_cached_total) {
  const uint64_t n = f.max_workloads;
  return agent::LimitWants{2 * n + 64, kMarksPerWorkload * n + max_cached_total, 3 * n + 4096};
}

std::string journal_path(const Flags& f) {
  return f.state_dir + "/events-in-hand.journal";
}

void log(const std::string& msg) {
  std::cerr << "corrald: " << msg << std::endl;
}

policy::Posture posture(const std::string& s) {
  return s == "block" ? policy::Posture::Block : policy::Posture::Audit;
}

// With --otlp-endpoint every published event is also offered to the exporter (it never
// blocks). Set in run() before any publisher starts; the exporter outlives them all.
events::OtlpExporter* otlp_exporter = nullptr;

// Every event's way out: counted (when metrics are served), offered to the OTLP exporter (when
// one is configured), then published to the hub.
void publish(events::EventHub& hub, agent::metrics::EventCounts* counts, events::Alert&& a) {
  if (counts != nullptr) counts->count(a);
  if (otlp_exporter != nullptr) otlp_exporter->offer(a);
  hub.publish(std::move(a));
}

// Where every backend's alerts go: stamped with the cluster and node, then published.
enforce::AlertSink alert_sink(events::EventHub& hub, const agent::AgentConfig& c,
                              agent::metrics::EventCounts* counts) {
  return [&hub, counts, cluster = c.cluster_name, host = c.host_name](events::Alert&& a) {
    a.cluster_name = cluster;
    a.host_name = host;
    publish(hub, counts, std::move(a));
  };
}

// What `corral get status` shows of the OTLP export.
void otlp_status(const events::OtlpExporter& e, std::map<std::string, std::string>& out) {
  const auto st = e.stats();
  out["otlp_exported"] = std::to_string(st.exported);
  out["otlp_dropped"] = std::to_string(st.dropped);
  out["otlp_failed_requests"] = std::to_string(st.failed_requests);
  out["otlp_retries"] = std::to_string(st.retries);
}

Result<std::unique_ptr<enforce::FanotifyEnforcer>>
make_enforcer(const Flags& f, events::EventHub& hub, const agent::AgentConfig& c,
              agent::metrics::EventCounts* counts, agent::FdHolderClient* holder,
              agent::HeldRulesStore* held, Fd kept_backstop) {
  if (f.enforcer == "none") return std::unique_ptr<enforce::FanotifyEnforcer>();
  enforce::FanotifyEnforcer::Options o;
  // Runs on the enforcement thread after the kernel was answered.
  o.sink = alert_sink(hub, c, counts);
  o.log = log;
  o.reply_bound = std::chrono::milliseconds(f.reply_bound_ms);
  o.responder_threads = f.responder_threads;
  o.journal = journal_path(f);
  if (f.test_stall_ms > 0) {
    o.on_path = [ms = f.test_stall_ms](int, const std::string&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    };
  }
  o.exec_backstop = f.exec_backstop != "off";
  o.test_max_groups = f.test_max_groups;
  // Cached allows never take the marks new groups need (64 mounts a workload), also where
  // max_user_marks could not be raised.
  const uint64_t marks = agent::read_kernel_limits().fanotify_marks;
  const uint64_t for_mounts = kMarksPerWorkload * static_cast<uint64_t>(f.max_workloads);
  o.max_cached_total =
      static_cast<size_t>(std::min<uint64_t>(enforce::FanotifyEnforcer::kMaxCachedTotal,
                                             marks > for_mounts ? marks - for_mounts : marks / 2));
  o.kept_backstop = std::move(kept_backstop);
  if (holder != nullptr) {
    o.on_group = [holder](const std::string& id, int fd, const std::string& meta) {
      holder->put(id, meta, fd);
    };
    // The rules the holder answers with while no agent runs (agent/held_rules.h).
    o.on_rules = [held](const workload::Workload& w, const policy::RuleSet& rules) {
      held->save(w, rules);
    };
    o.on_release = [holder, held](const std::string& id) {
      holder->drop(id);
      held->drop(id);
    };
  }
  auto e = enforce::FanotifyEnforcer::make(std::move(o));
  if (!e && f.enforcer == "auto") {
    log("no enforcer available, workloads are not enforced: " + e.error().to_string());
    return std::unique_ptr<enforce::FanotifyEnforcer>();
  }
  return e;
}

// The network enforcer (enforce/cgroupnet): null when off, or (cgroup-bpf) when it cannot
// run here. Under auto it is kept also when it cannot run: its coverage says why.
std::unique_ptr<enforce::CgroupNetEnforcer>
make_network_enforcer(const Flags& f, events::EventHub& hub, const agent::AgentConfig& c,
                      agent::metrics::EventCounts* counts, agent::FdHolderClient* holder,
                      enforce::cgroupnet::NetPrograms::Links kept_links) {
  if (f.network_enforcer == "off") return nullptr;
  enforce::CgroupNetEnforcer::Options o;
  o.sink = alert_sink(hub, c, counts);
  o.log = log;
  o.state_dir = f.state_dir;
  o.kept_links = std::move(kept_links);
  // Its tracepoints stay with the fd holder while the agent restarts (fromSource keeps up).
  if (holder != nullptr)
    o.on_link = [holder](const std::string& id, int fd) { holder->put(id, "bpf-link", fd); };
  auto e = enforce::CgroupNetEnforcer::make(std::move(o));
  if (!e->available()) {
    log("network rules are not enforced (cgroup-bpf): " + e->error());
    if (f.network_enforcer == "cgroup-bpf") return nullptr;
  }
  return e;
}

// The capabilities backend (enforce/capabilities): where this kernel lets no program fail a
// capability check it audits, and kills only when the operator asked for it.
std::unique_ptr<enforce::CapabilityEnforcer>
make_capabilities(const Flags& f, events::EventHub& hub, const agent::AgentConfig& c,
                  agent::metrics::EventCounts* counts) {
  if (f.enforcer == "none") return nullptr;
  enforce::CapabilityEnforcer::Options o;
  o.sink = alert_sink(hub, c, counts);
  o.log = log;
  o.kill_blocked = f.kill_on_blocked_capability;
  auto e = enforce::CapabilityEnforcer::make(std::move(o));
  if (!e) {
    log("capability rules are not enforced here: " + e.error().to_string());
    return nullptr;
  }
  const auto cov = (*e)->coverage(policy::Category::Capabilities);
  log("capability rules: " + std::string(enforce::to_string(cov.level)) + " by " + cov.how +
      (cov.reason.empty() ? "" : " (" + cov.reason + ")"));
  return std::move(*e);
}

// The fd holder keeps the kernel enforcing while this agent restarts (agent/fd_holder.h);
// the groups it kept from the previous agent are handed to the enforcer.
std::unique_ptr<agent::FdHolderClient> connect_holder(const Flags& f) {
  if (f.enforcer == "none" || f.hold_seconds <= 0) return nullptr;
  auto h = agent::FdHolderClient::connect_or_spawn(
      f.state_dir + "/fd-holder.sock", std::chrono::seconds(f.hold_seconds), journal_path(f));
  if (!h) {
    log("running without an fd holder (enforcement stops while the agent restarts): " +
        h.error().to_string());
    return nullptr;
  }
  return std::move(*h);
}

int run(const Flags& f) {
  // A wrong endpoint is refused before anything starts.
  if (auto u = events::otlp_logs_url(f.otlp_endpoint); !f.otlp_endpoint.empty() && !u)
    return log("--otlp-endpoint " + u.error().to_string()), 1;
  // First, on the only thread (setns applies to the calling one; the threads and the fd
  // holder started below inherit it): the node's view of cgroups, where the container runtime
  // gave the agent a cgroup namespace of its own (agent/host_namespaces.h).
  if (f.test_no_host_cgroupns) {
    log("staying in the agent's own cgroup namespace (--test-no-host-cgroupns)");
  } else if (auto r = agent::join_host_cgroup_namespace(f.containerd_socket); r) {
    log(*r);
  } else {
    log("WARNING: cannot take the node's cgroup namespace, the exec backstop may not know "
        "workloads by their cgroup: " +
        r.error().to_string());
  }
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
  // The HostName of events. In a pod, gethostname() is the pod's name (its own UTS
  // namespace): the DaemonSet passes the node's as NODE_NAME, as KubeArmor's does.
  config.host_name = node_name(f);
  const auto visibility = agent::parse_visibility(f.visibility);
  const auto host_visibility = agent::parse_visibility(f.host_visibility);
  for (const auto& [flag, value, parsed] :
       {std::tuple{"--visibility", f.visibility, visibility.has_value()},
        std::tuple{"--host-visibility", f.host_visibility, host_visibility.has_value()}}) {
    if (!parsed) {
      return log(std::string(flag) + " " + value +
                 ": invalid (hint: a comma list of process, file, network, or none)"),
             1;
    }
  }
  if ((*host_visibility & ~agent::kSeeProcess) != 0) {
    return log("--host-visibility " + f.host_visibility +
               ": only process (the node's own file and network calls are not recorded; "
               "hint: --host-visibility process)"),
           1;
  }
  config.default_visibility = *visibility;
  auto kube_config = kubernetes_config(f);
  if (!kube_config) return log("--kubernetes: " + kube_config.error().to_string()), 1;

  events::EventHub::FileOptions file{f.events_file, std::nullopt};
  if (!f.events_file_group.empty()) {
    const group* g = ::getgrnam(f.events_file_group.c_str());
    if (g == nullptr) {
      return log("--events-file-group " + f.events_file_group +
                 ": no such group (hint: an existing group name, e.g. adm)"),
             1;
    }
    file.group = g->gr_gid;
  }
  auto hub = events::EventHub::make(f.ring_size, file);
  if (!hub) return log(hub.error().to_string()), 1;
  std::unique_ptr<events::OtlpExporter> otlp;
  if (!f.otlp_endpoint.empty()) {
    events::OtlpExporter::Options oo;
    oo.endpoint = f.otlp_endpoint;
    oo.host_name = config.host_name;
    oo.cluster_name = config.cluster_name;
    oo.log = log;
    auto o = events::OtlpExporter::start(std::move(oo));
    if (!o) return log("--otlp-endpoint " + o.error().to_string()), 1;
    otlp = std::move(*o);
    otlp_exporter = otlp.get();
    log("exporting events as OTLP log records to " + otlp->url());
  }
  // Events by type, operation and action, counted where they are published (--metrics-listen).
  std::unique_ptr<agent::metrics::EventCounts> counts;
  if (!f.metrics_listen.empty()) {
    if (auto r = agent::parse_listen(f.metrics_listen); !r) return log(r.error().to_string()), 1;
    counts = std::make_unique<agent::metrics::EventCounts>();
  }
  // What the API said is cached apart from what `corral apply` stored in standalone mode.
  auto store = agent::StateStore::make(*kube_config ? f.state_dir + "/kubernetes" : f.state_dir);
  if (!store) return log(store.error().to_string()), 1;
  if (f.enforcer != "none") {
    // Before the fd holder starts: it inherits the open-files limit.
    const auto limits =
        agent::raise_kernel_limits(limit_wants(f, enforce::FanotifyEnforcer::kMaxCachedTotal));
    log("kernel limits for " + std::to_string(f.max_workloads) + " workloads: fanotify groups " +
        std::to_string(limits.fanotify_groups) + ", marks " +
        std::to_string(limits.fanotify_marks) + ", open files " +
        std::to_string(limits.open_files));
    for (const auto& p : limits.problems)
      log("WARNING: fewer workloads can be enforced than --max-workloads says: " + p);
  }
  // The groups a previous agent left with the fd holder, taken before anything is enforced.
  auto holder = connect_holder(f);
  std::vector<agent::HeldFd> kept;
  if (holder) {
    if (auto k = holder->take(); !k) {
      log("running without the fd holder: " + k.error().to_string());
      holder.reset();
    } else {
      kept = std::move(*k);
    }
  }
  // The exec backstop's link travels with the groups (their caches rely on it).
  Fd kept_backstop;
  // (Its other links, the kprobes', are attached anew on the kept maps: dropped here.)
  std::erase_if(kept, [&](agent::HeldFd& k) {
    if (!k.id.starts_with(enforce::FanotifyEnforcer::kBackstopId)) return false;
    if (k.id == enforce::FanotifyEnforcer::kBackstopId) kept_backstop = std::move(k.fd);
    return true;
  });
  // The network enforcer's tracepoint links (enforce/cgroupnet).
  enforce::cgroupnet::NetPrograms::Links kept_net;
  std::erase_if(kept, [&](agent::HeldFd& k) {
    if (!k.id.starts_with(enforce::cgroupnet::NetPrograms::kLinkPrefix)) return false;
    kept_net.emplace_back(k.id, std::move(k.fd));
    return true;
  });
  agent::HeldRulesStore held(f.state_dir + "/held-rules", log);
  // The system monitor (issue 10): who a process was, also once it exited (a backstop kill's
  // caller is often gone when its alert is built). Before the enforcer: its alerts ask it.
  std::unique_ptr<monitor::Monitor> mon;
  // What workloads do: visibility logs and profiles, from the monitor's events.
  agent::Activity::Options ao;
  ao.hub = hub->get();
  ao.counts = counts.get();
  ao.cluster_name = config.cluster_name;
  ao.host_name = config.host_name;
  ao.host_visibility = *host_visibility;
  ao.tee = [](const events::Alert& a) {
    if (otlp_exporter != nullptr) otlp_exporter->offer(a);
  };
  ao.process = [&mon](int tgid) { return mon ? mon->process(tgid) : std::nullopt; };
  ao.kernel_visibility = [&mon](uint64_t cgroup, unsigned mask) {
    if (!mon) return;
    const unsigned k = ((mask & agent::kSeeFile) != 0 ? monitor::kVisibleFile : 0u) |
                       ((mask & agent::kSeeNetwork) != 0 ? monitor::kVisibleNetwork : 0u);
    if (auto r = mon->set_visibility(cgroup, k); !r)
      log("visibility of cgroup " + std::to_string(cgroup) + ": " + r.error().to_string());
  };
  std::unique_ptr<agent::Activity> activity;
  if (f.monitor != "off") {
    monitor::Monitor::Options mo;
    mo.log = log;
    activity = std::make_unique<agent::Activity>(std::move(ao));
    mo.on_event = [a = activity.get()](const monitor::Event& e) { a->on_event(e); };
    if (auto m = monitor::Monitor::start(std::move(mo)); m) {
      mon = std::move(*m);
      enforce::fanotify::set_recall(
          [m = mon.get()](int pid) -> std::optional<enforce::fanotify::Remembered> {
            const auto p = m->process(pid);
            if (!p || p->exe.empty()) return std::nullopt;
            const auto space = p->args.find(' ');
            return enforce::fanotify::Remembered{
                p->exe, space == std::string::npos ? std::string() : p->args.substr(space + 1),
                p->forked_by, p->nspid, p->tty};
          });
    } else {
      log("running without the system monitor: " + m.error().to_string());
      activity.reset();
    }
  }
  auto enforcer =
      make_enforcer(f, **hub, config, counts.get(), holder.get(), &held, std::move(kept_backstop));
  if (!enforcer) return log(enforcer.error().to_string()), 1;
  if (*enforcer && !kept.empty()) {
    for (auto& k : kept) (*enforcer)->adopt(k.id, std::move(k.fd), k.meta);
    log("took back " + std::to_string(kept.size()) + " enforcing groups from the fd holder");
  }

  auto net =
      make_network_enforcer(f, **hub, config, counts.get(), holder.get(), std::move(kept_net));
  if (!net && f.network_enforcer == "cgroup-bpf") return 1;

  // A holder that dies is replaced, and handed every group (and BPF link) again.
  if (holder && (*enforcer || net)) {
    holder->watch(
        [e = enforcer->get(), n = net.get()] {
          if (e != nullptr) e->rehand();
          if (n != nullptr) n->rehand();
        },
        log);
  }
  struct StopWatching { // before the enforcer goes, on every return path
    agent::FdHolderClient* h;
    ~StopWatching() {
      if (h != nullptr) h->stop_watching();
    }
  } stop_watching{holder.get()};

  // The backends, one Enforcer for the agent: fanotify (process, file) first, then
  // cgroup-bpf (network).
  std::vector<enforce::Enforcer*> backends;
  if (*enforcer) backends.push_back(enforcer->get());
  if (net) backends.push_back(net.get());
  auto capabilities = make_capabilities(f, **hub, config, counts.get());
  if (capabilities) backends.push_back(capabilities.get());
  std::unique_ptr<enforce::CompositeEnforcer> composite;
  if (!backends.empty()) composite = std::make_unique<enforce::CompositeEnforcer>(backends);
  agent::Agent agent(config, **store, composite.get(), log);
  agent.set_alert_sink(
      [&hub, c = counts.get()](events::Alert&& a) { publish(**hub, c, std::move(a)); });
  agent.set_kubernetes(kube_config->has_value());
  if (activity) {
    agent.set_watch_sink([a = activity.get()](const std::vector<agent::WatchedWorkload>& w) {
      a->set_workloads(w);
    });
  }
  if (mon || otlp) {
    agent.set_extra_status([m = mon.get(),
                            o = otlp.get()](std::map<std::string, std::string>& out) {
      if (o != nullptr) otlp_status(*o, out);
      if (m == nullptr) return;
      const auto st = m->stats();
      const char* kinds[] = {"", "fork", "exec", "exit", "file", "network"};
      static_assert(std::size(kinds) == monitor::kKinds);
      std::string events, dropped;
      for (size_t k = 1; k < monitor::kKinds; ++k) {
        events += std::string(k > 1 ? ", " : "") + kinds[k] + " " + std::to_string(st.events[k]);
        dropped += std::string(k > 1 ? ", " : "") + kinds[k] + " " + std::to_string(st.dropped[k]);
      }
      out["monitor_events"] = events;
      out["monitor_dropped"] = dropped;
      out["monitor_processes"] = std::to_string(st.processes);
    });
  }
  // The last known state (cached from the API in Kubernetes mode) is enforced before
  // anything answers: nothing is lifted because the API is away.
  // The change log is checked before anything is added to it (issue 12): what was edited,
  // removed or reordered while no agent ran is alerted at severity 10; enforcement goes on
  // with the stored state as it is.
  const auto check = agent::verify_history((*store)->dir());
  auto history = agent::History::open((*store)->dir());
  if (!history) return log(history.error().to_string()), 1;
  agent.set_history(history->get());
  if (!check.ok()) { // before restore(), which refuses a stored file that no longer parses
    for (const auto& p : check.problems) log("change log: " + p);
    publish(**hub, counts.get(),
            agent::tamper_alert(check.problems, {config.cluster_name, config.host_name, 0}));
  }
  if (auto r = agent.restore(); !r) return log(r.error().to_string()), 1;
  std::unique_ptr<agent::KubeSource> kube;
  if (*kube_config) {
    const std::string server = (*kube_config)->server, from = (*kube_config)->source;
    agent::KubeSource::Options ko;
    ko.node = node_name(f);
    ko.log = log;
    auto k = agent::KubeSource::start(std::move(**kube_config), agent, std::move(ko));
    if (!k) return log("--kubernetes: " + k.error().to_string()), 1;
    kube = std::move(*k);
    agent.set_kubernetes_status([k = kube.get()] { return k->status(); });
    log("Kubernetes mode: policies, namespace annotations and pods from " + server + " (" + from +
        "), node " + node_name(f));
  }
  struct StopKube { // before the agent goes, on every return path
    std::unique_ptr<agent::KubeSource>& k;
    ~StopKube() {
      if (k) k->stop();
    }
  } stop_kube{kube};

  workload::ContainerdSource::Options so;
  so.socket = f.containerd_socket;
  so.upsert = [&agent, delay = f.test_delay_created_ms](const workload::Workload& w) {
    if (w.fresh && delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    agent.upsert_workload(w);
  };
  so.remove = [&agent](const std::string& id) { agent.remove_workload(id); };
  so.log = log;
  std::promise<void> first_sync;
  std::once_flag once;
  // Once every running workload is known (and enforced), kept groups (and backstop
  // entries) of workloads that are gone are released, however late containerd answers.
  so.synced = [&] {
    std::call_once(once, [&] {
      if (*enforcer) {
        if (const size_t n = (*enforcer)->release_unclaimed(); n > 0) {
          log("released " + std::to_string(n) + " kept groups of workloads that are gone");
        }
        held.sweep();
      }
      if (net) {
        if (const size_t n = net->release_unclaimed(); n > 0) {
          log("released the network program from " + std::to_string(n) +
              " cgroups of workloads that are gone or have no network rules");
        }
      }
      first_sync.set_value();
    });
  };
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

  auto api = agent::ApiServer::make(f.api_socket, agent, **hub, events::now_micros() / 1000000,
                                    activity.get());
  if (!api) return log(api.error().to_string()), 1;
  std::unique_ptr<feed::Server> feeder;
  if (!f.grpc_listen.empty()) {
    auto fs = feed::Server::start(
        {f.grpc_listen, "--grpc-listen", config.cluster_name, config.host_name, f.grpc_tls, log},
        **hub);
    if (!fs) return log(fs.error().to_string()), 1;
    feeder = std::move(*fs);
    log("serving feeder.LogService (KubeArmor's event API) and corral.api.Events on " +
        f.grpc_listen + " (port " + std::to_string(feeder->port()) + ", " +
        (f.grpc_tls.cert.empty() ? "plaintext"
         : f.grpc_tls.ca.empty() ? "TLS"
                                 : "mTLS: clients need a certificate") +
        ")");
  }
  std::unique_ptr<agent::MetricsServer> metrics;
  if (!f.metrics_listen.empty()) {
    auto ms = agent::MetricsServer::start({f.metrics_listen, log},
                                          {&agent, hub->get(), mon.get(), counts.get()});
    if (!ms) return log(ms.error().to_string()), 1;
    metrics = std::move(*ms);
    log("serving metrics (Prometheus text format, GET /metrics) on " + f.metrics_listen +
        " (port " + std::to_string(metrics->port()) + ")");
  }
  log(std::string("corrald ") + kVersion + " serving unix:" + f.api_socket + ", enforcer " +
      (*enforcer ? std::string((*enforcer)->name()) +
                       ((*enforcer)->exec_backstop() ? " with the exec backstop" : "")
                 : "none"));

  // Workloads a change could not reach are tried again every few seconds (a group freed by
  // a container that exited makes room for them).
  int sig = 0;
  const timespec retry_every{5, 0};
  while ((sig = sigtimedwait(&signals, nullptr, &retry_every)) < 0) {
    if (errno == EAGAIN) agent.retry_failed();
  }
  log(std::string("stopping on ") + strsignal(sig));
  (*api)->shutdown();
  if (feeder) feeder->shutdown();
  if (metrics) metrics->shutdown();
  if (kube) kube->stop();
  (*source)->stop();
  if (otlp) {
    otlp->stop(); // sends what is buffered, within its bound
    const auto st = otlp->stats();
    log("OTLP export to " + otlp->url() + ": " + std::to_string(st.exported) + " exported, " +
        std::to_string(st.dropped) + " dropped, " + std::to_string(st.failed_requests) +
        " failed requests, " + std::to_string(st.retries) + " retries");
  }
  // A stop (not a crash): enforcement ends with the agent, so the holder goes too.
  if (holder) holder->quit();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  corral::tune_malloc();
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
  app.add_option("--events-file", f.events_file,
                 "Append every event here as a JSON line (mode 0600: alerts carry command lines)");
  app.add_option("--events-file-group", f.events_file_group,
                 "Let this group read the events file (mode 0640)");
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
  app.add_option("--fd-hold-seconds", f.hold_seconds,
                 "If the agent dies, its holder process keeps the fanotify groups (execs wait) "
                 "this long for it to come back, then judges their events itself with each "
                 "workload's last rules (or, where it cannot, its verdict for what cannot be "
                 "judged: deny under an allow-list with posture block) until an agent is back; "
                 "0: no holder")
      ->capture_default_str();
  app.add_option("--reply-bound-ms", f.reply_bound_ms,
                 "An event not decided within this bound gets the workload's verdict for what "
                 "cannot be judged (deny under an allow-list with posture block)")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  app.add_option("--responder-threads", f.responder_threads,
                 "Threads answering permission events (workloads are served in turns)")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  app.add_option("--test-stall-events-ms", f.test_stall_ms)
      ->group(""); // tests only (agent crash with events in hand)
  app.add_option("--test-max-groups", f.test_max_groups)
      ->group(""); // tests only: group creation fails beyond this many, as on EMFILE
  app.add_option("--test-delay-created-ms", f.test_delay_created_ms)
      ->group(""); // tests only: the agent comes after a new container's start
  app.add_flag("--test-no-host-cgroupns", f.test_no_host_cgroupns)
      ->group(""); // tests only: the agent reads cgroups as its container's namespace shows them
  app.add_option("--max-workloads", f.max_workloads,
                 "Workloads this node may enforce at once: the kernel limits the enforcer "
                 "needs (fanotify groups and marks per user, open files) are raised to fit "
                 "at start, never lowered (`corral get status` shows them)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--exec-backstop", f.exec_backstop,
                 "auto: load the BPF exec backstop where the kernel allows it, so that ld.so is "
                 "cached under allow-lists (a direct `ld.so prog` is killed instead of denied); "
                 "off: ld.so asks the agent on every exec")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  app.add_option("--monitor", f.monitor,
                 "auto: run the system monitor (BPF: every process start, exec and exit) where "
                 "the kernel allows it, so that alerts name callers that already exited; off")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  app.add_option("--grpc-listen", f.grpc_listen,
                 "Serve KubeArmor's event API (feeder.LogService: WatchAlerts, WatchLogs, "
                 "WatchMessages, HealthCheck; and grpc.health.v1) on HOST:PORT, so KubeArmor's "
                 "clients read this agent; KubeArmor's port is 32767; and corral.api.Events, the "
                 "same events with sequence numbers for corral-relay. Off by default; plaintext "
                 "unless --grpc-tls-cert/--grpc-tls-key are given");
  app.add_option("--grpc-tls-cert", f.grpc_tls.cert,
                 "The --grpc-listen server's certificate chain (PEM): serve TLS");
  app.add_option("--grpc-tls-key", f.grpc_tls.key, "Its private key (PEM)");
  app.add_option("--grpc-tls-ca", f.grpc_tls.ca,
                 "mTLS: clients must present a certificate this CA (PEM) signed; a client "
                 "without one is refused");
  app.add_option("--metrics-listen", f.metrics_listen,
                 "Serve the agent's metrics in the Prometheus text format (GET /metrics) on "
                 "HOST:PORT (port 0: any free port, logged): events by type, operation and "
                 "action, permission events answered, on error and timed out, the decision "
                 "latency, ring-buffer drops, workloads, policies. Off by default (plain HTTP: "
                 "bind it to a private address)");
  app.add_option("--otlp-endpoint", f.otlp_endpoint,
                 "Also send every alert and log as an OpenTelemetry log record (OTLP/HTTP, JSON "
                 "encoding) to this receiver, e.g. http://otel-collector:4318 (a URL without a "
                 "path gets /v1/logs; https is verified). Batched, retried with backoff; never "
                 "slows enforcement: what a full buffer cannot hold is dropped and counted "
                 "(`corral get status`). Off by default");
  app.add_option("--visibility", f.visibility,
                 "Visibility logs (Type ContainerLog, `corral logs --logFilter system`) of "
                 "workloads whose namespace or pod has no kubearmor-visibility annotation: a "
                 "comma list of process, file, network, or none")
      ->capture_default_str();
  app.add_option("--host-visibility", f.host_visibility,
                 "Visibility logs (Type HostLog) of the node's own processes: process or none")
      ->capture_default_str();
  app.add_option("--network-enforcer", f.network_enforcer,
                 "auto: enforce network (protocol) rules with cgroup/sock_create BPF programs "
                 "where they load and attach (else `get workloads -o wide` and apply say the "
                 "rules are unsupported); cgroup-bpf: the same, and refuse to start without; off")
      ->check(CLI::IsMember({"auto", "cgroup-bpf", "off"}))
      ->capture_default_str();
  app.add_flag("--kill-on-blocked-capability", f.kill_on_blocked_capability,
               "Where this kernel cannot fail a capability check (capability rules audited "
               "only), SIGKILL a workload's process when it uses a capability its rules block "
               "(the call that used it completes; alert Result: Killed)");
  app.add_option("--kubernetes", f.kubernetes,
                 "Take policies, namespace annotations and pod labels from the Kubernetes API "
                 "(the CLI's apply, delete and annotate are then refused): on, off, or auto "
                 "(on when --kubeconfig is given or the in-cluster service account is present)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--kubeconfig", f.kubeconfig,
                 "A kubeconfig to reach the API with (its current context); TLS is always "
                 "verified");
  app.add_option("--node-name", f.node_name,
                 "This node's name in Kubernetes (only its pods are watched); default: "
                 "$NODE_NAME, then the host name");
  app.add_option("--serviceaccount-dir", f.serviceaccount_dir,
                 "Where the in-cluster token, ca.crt and namespace are (the token is re-read "
                 "when it rotates)")
      ->capture_default_str();
  app.footer("Environment: NODE_NAME, this node's name (--node-name) and the HostName of "
             "events (default: the host's name).\n"
             "Example: corrald --events-file /var/log/corral/events.jsonl "
             "--default-file-posture audit");
  // `corrald fd-holder`: the holder process the agent starts (agent/fd_holder.h).
  if (argc > 1 && std::string_view(argv[1]) == "fd-holder") {
    std::string socket;
    std::string journal;
    int hold = 10;
    CLI::App holder{"corrald fd-holder - keeps the agent's fanotify groups across restarts"};
    holder.add_option("--socket", socket)->required();
    holder.add_option("--hold-seconds", hold);
    holder.add_option("--journal", journal);
    try {
      holder.parse(argc - 1, argv + 1);
    } catch (const CLI::ParseError& e) {
      return holder.exit(e);
    }
    return agent::run_fd_holder(socket, std::chrono::seconds(hold), journal);
  }
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::cerr << "corrald: must run as root (fanotify permission events and containerd's socket "
                 "need it)\n";
    return 1;
  }
  return run(f);
}
