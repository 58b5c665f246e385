// corral-relay: one stream of every node's events (issue 11). It follows the
// corral.api.Events stream of each agent it is given (flags, a file, or a DNS name that
// resolves to many — a headless Service), merges them into an event hub of its own, and
// serves that hub as the agents do: feeder.LogService for KubeArmor's clients, and
// corral.api.Events for `corral logs --grpc` and other relays. Optionally it writes the
// alerts as JSON lines. A restart of an agent or of the relay loses nothing the agent still
// buffers and repeats nothing: each agent's stream resumes after the newest sequence number
// had from it (the relay's own file gives those back after its restart).
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>
#include <netdb.h>
#include <unistd.h>

#include "core/strings.h"
#include "core/version.h"
#include "events/format.h"
#include "events/otlp.h"
#include "feed/follower.h"
#include "feed/server.h"

namespace {

using namespace corral;

struct Flags {
  std::vector<std::string> agents;
  std::string agents_file, agents_dns;
  std::string listen = "0.0.0.0:32767";
  feed::TlsFiles tls, agent_tls;
  std::string json_file, otlp_endpoint;
  size_t ring_size = 65536;
  std::string name, cluster_name = "default";
};

void log(const std::string& m) {
  std::cerr << "corral-relay: " << m << std::endl;
}

// HOST:PORT lines of the agents file; '#' starts a comment. Unreadable: none (said once).
std::set<std::string> read_agents_file(const std::string& path, bool* told) {
  std::set<std::string> out;
  std::ifstream in(path);
  if (!in) {
    if (!*told) log("cannot read --agents-file " + path + "; trying again");
    *told = true;
    return out;
  }
  *told = false;
  std::string line;
  while (std::getline(in, line)) {
    const std::string_view t = trim(std::string_view(line).substr(0, line.find('#')));
    if (!t.empty()) out.emplace(t);
  }
  return out;
}

// Every address NAME resolves to, as HOST:PORT ([v6]:PORT).
std::set<std::string> resolve(const std::string& name_port, bool* told) {
  std::set<std::string> out;
  const auto colon = name_port.rfind(':');
  const std::string name = name_port.substr(0, colon), port = name_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(name.c_str(), port.c_str(), &hints, &res); rc != 0) {
    if (!*told) log("--agents-dns " + name_port + ": " + gai_strerror(rc) + "; trying again");
    *told = true;
    return out;
  }
  *told = false;
  for (addrinfo* a = res; a; a = a->ai_next) {
    char host[NI_MAXHOST];
    if (::getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST))
      continue;
    const std::string h = host;
    out.insert((h.find(':') == std::string::npos ? h : "[" + h + "]") + ":" + port);
  }
  ::freeaddrinfo(res);
  return out;
}

struct Agent {
  std::unique_ptr<feed::Follower> follower;
  std::thread thread;
};

int run(const Flags& f) {
  if (f.agents.empty() && f.agents_file.empty() && f.agents_dns.empty()) {
    log("no agents: give --agent HOST:PORT (repeatable), --agents-file FILE or --agents-dns "
        "NAME:PORT");
    return 2;
  }
  if (!f.agents_dns.empty() && f.agents_dns.find(':') == std::string::npos) {
    log("--agents-dns " + f.agents_dns + ": want NAME:PORT, e.g. corrald.kube-system:32767");
    return 2;
  }
  auto hub = events::EventHub::make(f.ring_size, f.json_file);
  if (!hub) return log(hub.error().to_string()), 1;

  // Where each node's stream resumes: after what the relay already has (its file, on a
  // restart), so that nothing arrives twice.
  feed::Positions positions;
  {
    auto c = (*hub)->first();
    uint64_t lost = 0;
    std::map<std::string, uint64_t> newest;
    events::Filter all;
    all.log_filter = "all";
    for (const auto& a : (*hub)->read(&c, all, &lost))
      newest[a.host_name] = std::max(newest[a.host_name], a.seq);
    positions.seed(newest);
    if (!newest.empty())
      log("resuming " + std::to_string(newest.size()) + " nodes after the events of " +
          f.json_file);
  }

  char host[256] = "relay";
  ::gethostname(host, sizeof host - 1);
  const std::string name = f.name.empty() ? std::string(host) : f.name;
  auto server =
      feed::Server::start({f.listen, "--listen", f.cluster_name, name, f.tls, log}, **hub);
  if (!server) return log(server.error().to_string()), 1;
  log(std::string("corral-relay ") + kVersion +
      " serving feeder.LogService and corral.api.Events on " + f.listen + " (port " +
      std::to_string((*server)->port()) + ")");

  // Stop on SIGINT/SIGTERM; every second, look at the list of agents again.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::map<std::string, Agent> agents;
  bool file_told = false, dns_told = false;
  std::set<std::string> from_file, from_dns;
  std::unique_ptr<events::OtlpExporter> otlp;
  if (!f.otlp_endpoint.empty()) {
    events::OtlpExporter::Options oo;
    oo.endpoint = f.otlp_endpoint;
    oo.host_name = name; // each record's own node wins (the event's HostName)
    oo.cluster_name = f.cluster_name;
    oo.log = log;
    auto o = events::OtlpExporter::start(std::move(oo));
    if (!o) return log("--otlp-endpoint " + o.error().to_string()), 2;
    otlp = std::move(*o);
    log("exporting the merged events as OTLP log records to " + otlp->url());
  }
  auto take = [h = hub->get(), x = otlp.get()](events::Alert&& a) {
    if (x != nullptr) x->offer(a);
    h->publish(std::move(a));
    return true;
  };
  for (int tick = 0;; ++tick) {
    if (!f.agents_file.empty() && tick % 5 == 0)
      from_file = read_agents_file(f.agents_file, &file_told);
    if (!f.agents_dns.empty() && tick % 10 == 0) from_dns = resolve(f.agents_dns, &dns_told);
    std::set<std::string> want(f.agents.begin(), f.agents.end());
    want.insert(from_file.begin(), from_file.end());
    want.insert(from_dns.begin(), from_dns.end());
    for (auto it = agents.begin(); it != agents.end();) {
      if (want.count(it->first)) {
        ++it;
        continue;
      }
      log("no longer following " + it->first);
      it->second.follower->stop();
      it->second.thread.join();
      it = agents.erase(it);
    }
    for (const auto& target : want) {
      if (agents.count(target)) continue;
      Agent& a = agents[target];
      a.follower = std::make_unique<feed::Follower>(feed::Follower::Options{
          target, f.agent_tls, "--agent-tls", "all", false, log, std::chrono::milliseconds(5000)});
      a.thread = std::thread([&positions, &take, target, fol = a.follower.get()] {
        std::string error;
        if (fol->run(positions, take, true, &error) != feed::Follower::End::kStopped)
          log(error + " (hint: is it a corrald started with --grpc-listen? A KubeArmor agent "
                      "has no corral.api.Events to resume from)");
      });
      log("following " + target);
    }
    timespec second{1, 0};
    if (sigtimedwait(&signals, nullptr, &second) > 0) break;
  }
  log("stopping");
  for (auto& [target, a] : agents) a.follower->stop();
  for (auto& [target, a] : agents) a.thread.join();
  (*server)->shutdown();
  if (otlp) {
    otlp->stop();
    const auto st = otlp->stats();
    log("OTLP: " + std::to_string(st.exported) + " exported, " + std::to_string(st.dropped) +
        " dropped");
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"corral-relay: every node's Corral events in one stream (KubeArmor's event API)"};
  app.add_option("--agent", f.agents, "An agent's --grpc-listen HOST:PORT (repeatable)");
  app.add_option("--agents-file", f.agents_file,
                 "A file of agents, HOST:PORT per line ('#' comments); read again every 5 s");
  app.add_option("--agents-dns", f.agents_dns,
                 "NAME:PORT: every address NAME resolves to is an agent (a headless Service, "
                 "e.g. corrald.kube-system.svc:32767); resolved again every 10 s");
  app.add_option("--listen", f.listen, "Serve the merged stream on HOST:PORT")
      ->capture_default_str();
  app.add_option("--tls-cert", f.tls.cert, "This server's certificate chain (PEM): serve TLS");
  app.add_option("--tls-key", f.tls.key, "Its private key (PEM)");
  app.add_option("--tls-ca", f.tls.ca, "mTLS: clients must present a certificate this CA signed");
  app.add_option("--agent-tls-ca", f.agent_tls.ca, "Connect to agents with TLS: their CA (PEM)");
  app.add_option("--agent-tls-cert", f.agent_tls.cert,
                 "This relay's client certificate (PEM), for agents that require one");
  app.add_option("--agent-tls-key", f.agent_tls.key, "Its private key (PEM)");
  app.add_option("--json-file", f.json_file,
                 "Append every alert as a JSON line (KubeArmor's field names, and Seq); after a "
                 "restart the relay resumes each node after what this file holds");
  app.add_option("--otlp-endpoint", f.otlp_endpoint,
                 "Also export the merged events as OTLP/HTTP log records (JSON) to this URL "
                 "(a base URL gets /v1/logs), as corrald --otlp-endpoint does");
  app.add_option("--ring-size", f.ring_size, "Alerts, and as many logs, kept in memory")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  app.add_option("--name", f.name, "HostName in the relay's own messages (default: host name)");
  app.add_option("--cluster-name", f.cluster_name, "ClusterName in its messages")
      ->capture_default_str();
  app.footer("Example: corral-relay --agents-dns corrald.kube-system.svc.cluster.local:32767\n"
             "         corral logs --grpc RELAY:32767 --json");
  CLI11_PARSE(app, argc, argv);
  return run(f);
}
