// corral logs — the agent's events, with karmor's flags and output.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "events/format.h"
#include "events/proto_convert.h"

namespace corral::cli {
namespace {

struct Options {
  api::WatchRequest req;
  std::string log_filter = "policy";
  bool json = false;
  std::string socket;
};

int run(Options& o) {
  o.req.set_filter(o.log_filter);
  auto stub = connect(o.socket, "logs");
  if (!stub) return 1;
  grpc::ClientContext ctx;
  if (!o.req.follow()) ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
  auto reader = stub->Watch(&ctx, o.req);
  api::Event ev;
  while (reader->Read(&ev)) {
    const auto a = ev.has_alert() ? events::from_proto(ev.alert()) : events::from_proto(ev.log());
    if (o.json) {
      std::cout << events::to_json(a).dump() << std::endl;
    } else {
      std::cout << events::to_text(a) << std::endl;
    }
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
  add_socket_option(cmd, o->socket);
  cmd->footer("Examples: corral logs -n default\n"
              "          corral logs --json --follow --operation Process");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
