// corral logs — the agent's events, with karmor's flags and output.
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "events/filter.h"
#include "events/format.h"
#include "events/proto_convert.h"
#include "feed/follower.h"
#include "kubearmor.grpc.pb.h"

namespace corral::cli {
namespace {

struct Options {
  api::WatchRequest req;
  std::string log_filter = "policy";
  bool json = false;
  std::string socket;
  std::string grpc; // HOST:PORT of an agent's or relay's feeder.LogService
  feed::TlsFiles tls;
};

events::Filter filter_of(const Options& o) {
  events::Filter f;
  f.log_filter = o.log_filter;
  f.namespace_name = o.req.namespace_();
  f.pod = o.req.pod();
  f.container = o.req.container();
  f.operation = o.req.operation();
  f.resource = o.req.resource();
  f.source = o.req.source();
  return f;
}

void print(const events::Alert& a, bool json) {
  if (json) {
    std::cout << events::to_json(a).dump() << std::endl;
  } else {
    std::cout << events::to_text(a) << std::endl;
  }
}

// From KubeArmor's own event API (feeder.LogService: a KubeArmor agent or relay): its
// streams carry only new events, the filters apply here. Ends after --limit events, or when
// the server ends the streams.
int run_feeder(const Options& o) {
  auto creds = feed::channel_credentials(o.tls, "--tls");
  if (!creds) {
    std::cerr << "corral logs: " << creds.error().to_string() << "\n";
    return 1;
  }
  auto channel = grpc::CreateChannel(o.grpc, *creds);
  auto stub = feeder::LogService::NewStub(channel);
  const events::Filter f = filter_of(o);
  const int limit = o.req.limit();
  std::mutex mu;
  int printed = 0;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  const auto cancel_all = [&] {
    for (auto& c : contexts) c->TryCancel();
  };
  // Prints one event; false once --limit is reached (every stream is then cancelled).
  const auto take = [&](const events::Alert& a) {
    if (!f.matches(a)) return true;
    std::lock_guard lock(mu);
    if (limit > 0 && printed >= limit) return false;
    print(a, o.json);
    if (limit > 0 && ++printed >= limit) {
      cancel_all();
      return false;
    }
    return true;
  };
  feeder::RequestMessage req;
  std::vector<std::thread> readers;
  std::vector<grpc::Status> results(2);
  const bool alerts = o.log_filter != "system", logs = o.log_filter != "policy";
  for (int i = 0; i < 2; ++i) contexts.push_back(std::make_unique<grpc::ClientContext>());
  if (alerts) {
    readers.emplace_back([&] {
      req.set_filter("policy");
      auto r = stub->WatchAlerts(contexts[0].get(), req);
      feeder::Alert a;
      while (r->Read(&a) && take(events::from_proto(a))) {
      }
      results[0] = r->Finish();
    });
  }
  if (logs) {
    readers.emplace_back([&] {
      feeder::RequestMessage lr;
      lr.set_filter("system");
      auto r = stub->WatchLogs(contexts[1].get(), lr);
      feeder::Log l;
      while (r->Read(&l) && take(events::from_proto(l))) {
      }
      results[1] = r->Finish();
    });
  }
  for (auto& t : readers) t.join();
  for (const auto& st : results) {
    if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
      std::cerr << "corral logs: " << o.grpc << ": " << st.error_message()
                << " (hint: is an agent started with --grpc-listen, or a relay, there?)\n";
      return 1;
    }
  }
  return 0;
}

// Over the network, from corral.api.Events (an agent's --grpc-listen, or a relay): new
// events, and after a broken stream (either side restarting) what the server still buffers
// past the last event had from each node: nothing twice, nothing skipped. Ends after --limit
// events. A KubeArmor agent (no corral.api.Events) is read through feeder.LogService.
int run_grpc(const Options& o) {
  const events::Filter f = filter_of(o);
  const int limit = o.req.limit();
  int printed = 0;
  feed::Follower follower({o.grpc, o.tls, "--tls", o.log_filter, true,
                           [](const std::string& m) { std::cerr << "corral logs: " << m << "\n"; },
                           std::chrono::milliseconds(2000)});
  feed::Positions positions;
  std::string error;
  const auto end = follower.run(
      positions,
      [&](events::Alert&& a) {
        if (!f.matches(a)) return true;
        print(a, o.json);
        return limit <= 0 || ++printed < limit;
      },
      false, &error);
  if (end == feed::Follower::End::kUnimplemented) return run_feeder(o);
  if (end != feed::Follower::End::kStopped) {
    std::cerr << "corral logs: " << error
              << " (hint: is an agent started with --grpc-listen, or a relay, there? TLS: "
                 "--tls-ca, and --tls-cert/--tls-key where clients need a certificate)\n";
    return 1;
  }
  return 0;
}

int run(Options& o) {
  if (!o.grpc.empty()) return run_grpc(o);
  o.req.set_filter(o.log_filter);
  auto stub = connect(o.socket, "logs");
  if (!stub) return 1;
  grpc::ClientContext ctx;
  if (!o.req.follow()) ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
  auto reader = stub->Watch(&ctx, o.req);
  api::Event ev;
  while (reader->Read(&ev)) {
    print(ev.has_alert() ? events::from_proto(ev.alert()) : events::from_proto(ev.log()), o.json);
  }
  const auto status = reader->Finish();
  return status.ok() ? 0 : report(status, "logs", o.socket);
}

} // namespace

void add_logs(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("logs", "Show the agent's alerts and logs (karmor logs' flags)");
  const auto str = [&](const char* name, std::string* (api::WatchRequest::*m)(), const char* help) {
    cmd->add_option_function<std::string>(
        name, [o, m](const std::string& v) { *((o->req).*m)() = v; }, help);
  };
  str("-n,--namespace", &api::WatchRequest::mutable_namespace_, "Only this namespace");
  str("--pod", &api::WatchRequest::mutable_pod, "Only this pod");
  str("--container", &api::WatchRequest::mutable_container, "Only this container (name or id)");
  str("--operation", &api::WatchRequest::mutable_operation,
      "Only Process, File, Network or Capabilities");
  str("--resource", &api::WatchRequest::mutable_resource, "Only resources containing this");
  str("--source", &api::WatchRequest::mutable_source, "Only sources containing this");
  cmd->add_option("--logFilter", o->log_filter, "policy (alerts), system (logs) or all")
      ->check(CLI::IsMember({"policy", "system", "all"}))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per line (KubeArmor's field names)");
  cmd->add_option_function<int>(
      "--limit", [o](int n) { o->req.set_limit(n); }, "Only the newest N stored events");
  cmd->add_flag_function(
      "--follow", [o](int64_t) { o->req.set_follow(true); }, "Keep streaming new events");
  cmd->add_option("--grpc", o->grpc,
                  "Read events over the network (HOST:PORT of an agent's --grpc-listen or of "
                  "corral-relay; a KubeArmor agent works too): new events, until --limit N of "
                  "them; a broken stream is resumed without repeats or gaps");
  cmd->add_option("--tls-ca", o->tls.ca, "--grpc: the server's CA (PEM): connect with TLS");
  cmd->add_option("--tls-cert", o->tls.cert,
                  "--grpc: this client's certificate (PEM), for a server that requires one");
  cmd->add_option("--tls-key", o->tls.key, "--grpc: its private key (PEM)");
  add_socket_option(cmd, o->socket);
  cmd->footer("Examples: corral logs -n default\n"
              "          corral logs --grpc 10.0.0.5:32767 --logFilter all --json\n"
              "          corral logs --json --follow --operation Process");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
