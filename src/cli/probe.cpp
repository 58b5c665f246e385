// corral probe [--full] [-o text|json]: what this node's kernel lets Corral do (tried for
// real, src/probe), the container runtimes found, what `--enforcer auto` picks, and the
// running agent's view of its workloads (issue 9; the seed's step 2, `karmor probe`).
#include <cerrno>
#include <cstring>
#include <iostream>

#include <sys/stat.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/probe_view.h"
#include "core/version.h"

namespace corral::cli {
namespace {

struct Options {
  bool full = false;
  std::string output = "text";
  std::string socket;
  std::string containerd_socket;
};

// Quietly (unlike connect()): an agent that is not there is a finding, not an error.
AgentView read_agent(const std::string& socket) {
  AgentView a{.socket = socket};
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    a.error = errno == ENOENT ? "not running (no socket at " + socket + ")"
                              : "cannot reach " + socket + ": " + std::strerror(errno);
    return a;
  }
  if (::access(socket.c_str(), W_OK) != 0) {
    a.error = "needs root (the agent's socket is root-only)";
    return a;
  }
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(2))) {
    a.error = "not running (no agent answers on " + socket + ")";
    return a;
  }
  auto stub = api::Agent::NewStub(channel);
  auto s = stub->Status(unary_context().get(), api::StatusRequest(), &a.status);
  if (s.ok()) s = stub->ListWorkloads(unary_context().get(), api::ListRequest(), &a.workloads);
  if (!s.ok()) {
    a.error = "the agent did not answer: " + s.error_message();
    return a;
  }
  a.running = true;
  return a;
}

nlohmann::ordered_json or_null(const std::string& s) {
  return s.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(s);
}

nlohmann::ordered_json check_json(const probe::Check& c) {
  return {{"title", c.title},
          {"result", probe::to_string(c.result)},
          {"what", c.what},
          {"stage", or_null(c.stage)},
          {"errno", c.err},
          {"error", c.err != 0 ? nlohmann::ordered_json(probe::errno_name(c.err))
                               : nlohmann::ordered_json()},
          {"message", c.message}};
}

nlohmann::ordered_json agent_json(const AgentView& a) {
  nlohmann::ordered_json j{
      {"socket", a.socket}, {"running", a.running}, {"error", or_null(a.error)}};
  if (!a.running) return j;
  const auto& s = a.status;
  j["version"] = s.version();
  j["enforcer"] = s.enforcer();
  j["postures"] = {{"file", s.default_file_posture()},
                   {"network", s.default_network_posture()},
                   {"capabilities", s.default_capabilities_posture()}};
  j["policies"] = s.policies();
  j["workloads"] = nlohmann::ordered_json::array();
  for (const auto& w : a.workloads.workloads()) {
    j["workloads"].push_back(
        {{"id", w.id()},
         {"namespace", w.namespace_()},
         {"name", w.name()},
         {"pod", w.pod()},
         {"policies", std::vector<std::string>(w.policies().begin(), w.policies().end())},
         {"postures",
          {{"file", w.file_posture()},
           {"network", w.network_posture()},
           {"capabilities", w.capabilities_posture()}}},
         {"sections", std::vector<std::string>(w.sections().begin(), w.sections().end())},
         {"enforcement", w.enforcement()}});
  }
  return j;
}

int run(const Options& o) {
  ProbeView v;
  char host[256] = {};
  (void)::gethostname(host, sizeof host - 1);
  v.host = host;
  v.report = probe::run({.full = o.full, .containerd_socket = o.containerd_socket});
  v.agent = read_agent(o.socket);
  if (o.output == "json") {
    std::cout << to_json(v).dump(2) << "\n";
  } else {
    std::cout << to_text(v, o.full, ::isatty(STDOUT_FILENO) == 1);
  }
  return std::cout.good() ? 0 : 1;
}

} // namespace

nlohmann::ordered_json to_json(const ProbeView& v) {
  const auto& r = v.report;
  const auto& k = r.kernel;
  nlohmann::ordered_json checks = nlohmann::ordered_json::object();
  for (const auto& c : r.checks) checks[c.id] = check_json(c);
  nlohmann::ordered_json sockets = nlohmann::ordered_json::array();
  for (const auto& s : r.sockets) {
    sockets.push_back({{"runtime", s.runtime},
                       {"path", s.path},
                       {"given", s.given},
                       {"found", s.found},
                       {"reachable", s.reachable},
                       {"error", or_null(s.error)}});
  }
  nlohmann::ordered_json picks = nlohmann::ordered_json::object();
  for (const auto& p : r.picks) {
    picks[p.category] = {{"enforcer", p.enforcer}, {"coverage", p.coverage}, {"reason", p.reason}};
  }
  return {{"schema", "corral-probe/v1"},
          {"corral_version", kVersion},
          {"host", v.host},
          {"root", r.root},
          {"kernel",
           {{"release", k.release},
            {"version", k.version},
            {"machine", k.machine},
            {"btf", or_null(k.btf)},
            {"cgroup2", or_null(k.cgroup2)},
            {"cgroup_hybrid", k.cgroup_hybrid}}},
          {"lsm",
           {{"active", k.lsm.active},
            {"source", or_null(k.lsm.source)},
            {"error", or_null(k.lsm.error)}}},
          {"checks", checks},
          {"runtime_sockets", sockets},
          {"auto", picks},
          {"notes", r.notes},
          {"agent", agent_json(v.agent)}};
}

void add_probe(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "probe", "Check what this node's kernel lets Corral enforce (tried for real), the "
               "container runtimes found, and the running agent's workloads");
  cmd->add_flag("--full", o->full,
                "Also the monitor's mechanisms (tp_btf, ring buffer), every runtime path "
                "tried, what each check did, and workloads without policies");
  cmd->add_option("-o,--output", o->output, "text or json (schema: docs/probe.schema.json)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--containerd-socket", o->containerd_socket,
                  "Also look for containerd at this socket");
  add_socket_option(cmd, o->socket);
  cmd->footer("Most checks need root: sudo corral probe\nExamples: sudo corral probe\n"
              "          sudo corral probe -o json | jq .auto");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
