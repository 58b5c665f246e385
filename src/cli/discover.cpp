// corral discover WORKLOAD — the least-permissive policy from what the workload ran and runs
// (the seed's `ps aux` step and the hand-written allow-list, as one command); corral profile
// — what each workload runs, opens and connects to, live.
#include <chrono>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/discovery.h"

namespace corral::cli {
namespace {

struct DiscoverOptions {
  std::string workload, namespace_name, since, output = "yaml", name, socket;
};

int discover(const DiscoverOptions& o) {
  int64_t since = 0;
  if (!o.since.empty()) {
    auto d = parse_duration(o.since, "--since");
    if (!d) return std::cerr << "corral discover: " << d.error().to_string() << "\n", 1;
    since = std::time(nullptr) - *d;
  }
  auto stub = connect(o.socket, "discover");
  if (!stub) return 1;
  const auto reply =
      read_profiles(*stub, {o.namespace_name, "", "", true, since}, "discover", o.socket);
  if (!reply) return 1;
  auto w = pick_workload(*reply, o.workload, o.namespace_name);
  if (!w) return std::cerr << "corral discover: " << w.error().to_string() << "\n", 1;
  DiscoveredPolicy d;
  d.name = o.name.empty() ? discovered_name(*w, "corral-") : o.name;
  if (o.output == "json") {
    auto j = policy_json(*w, d);
    if (!j) return std::cerr << "corral discover: " << j.error().to_string() << "\n", 1;
    std::cout << j->dump(2) << "\n";
    return 0;
  }
  auto y = policy_yaml(*w, d);
  if (!y) return std::cerr << "corral discover: " << y.error().to_string() << "\n", 1;
  std::cout << *y;
  return 0;
}

struct ProfileOptions {
  std::string namespace_name, pod, container, socket;
  bool json = false, once = false;
  double interval = 2;
};

std::string ago(int64_t t) {
  const int64_t s = std::max<int64_t>(0, std::time(nullptr) - t);
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  return std::to_string(s / 3600) + "h ago";
}

void print_text(const api::ProfileReply& reply, std::ostream& out) {
  if (!reply.monitor()) out << "(the agent runs without the system monitor: nothing is recorded)\n";
  if (reply.workloads().empty()) out << "no running workload matches\n";
  for (const auto& p : reply.workloads()) {
    const auto& w = p.workload();
    out << w.namespace_() << "/" << w.name() << (w.pod().empty() ? "" : " (pod " + w.pod() + ")")
        << "  visibility " << p.visibility() << ", recorded since " << ago(p.since()) << "\n";
    const std::pair<const char*, const google::protobuf::RepeatedPtrField<api::SeenItem>*> kinds[] =
        {{"process", &p.processes()}, {"file", &p.files()}, {"network", &p.network()}};
    for (const auto& [kind, items] : kinds) {
      for (const auto& s : *items) {
        out << "  " << kind << "\t" << s.count() << "\t"
            << (s.count() == 0 ? "running now" : ago(s.last())) << "\t" << s.name() << "\n";
      }
    }
    if (!p.files_recorded())
      out << "  file\t-\t-\t(not recorded: kubearmor-visibility has no file)\n";
    if (!p.network_recorded())
      out << "  network\t-\t-\t(not recorded: kubearmor-visibility has no network)\n";
  }
}

nlohmann::ordered_json to_json(const api::ProfileReply& reply) {
  nlohmann::ordered_json j;
  j["monitor"] = reply.monitor();
  j["workloads"] = nlohmann::ordered_json::array();
  for (const auto& p : reply.workloads()) {
    nlohmann::ordered_json w;
    w["namespace"] = p.workload().namespace_();
    w["name"] = p.workload().name();
    w["pod"] = p.workload().pod();
    w["id"] = p.workload().id();
    w["visibility"] = p.visibility();
    w["since"] = p.since();
    w["filesRecorded"] = p.files_recorded();
    w["networkRecorded"] = p.network_recorded();
    const std::map<std::string, std::string> annotations(p.namespace_annotations().begin(),
                                                         p.namespace_annotations().end());
    w["namespaceAnnotations"] = annotations;
    const std::pair<const char*, const google::protobuf::RepeatedPtrField<api::SeenItem>*> kinds[] =
        {{"processes", &p.processes()}, {"files", &p.files()}, {"network", &p.network()}};
    for (const auto& [kind, items] : kinds) {
      w[kind] = nlohmann::ordered_json::array();
      for (const auto& s : *items) {
        nlohmann::ordered_json i{
            {"name", s.name()}, {"count", s.count()}, {"first", s.first()}, {"last", s.last()}};
        if (!s.protocol().empty()) i["protocol"] = s.protocol();
        w[kind].push_back(i);
      }
    }
    j["workloads"].push_back(w);
  }
  return j;
}

int profile(const ProfileOptions& o) {
  if (o.interval < 0.2) {
    std::cerr << "corral profile: --interval " << o.interval
              << " is too short (hint: 0.2 seconds or more)\n";
    return 1;
  }
  auto stub = connect(o.socket, "profile");
  if (!stub) return 1;
  const ProfileQuery q{o.namespace_name, o.pod, o.container, true, 0};
  // Live, like top, on a terminal; once (plain lines or JSON) otherwise.
  const bool live = !o.once && !o.json && ::isatty(STDOUT_FILENO) != 0;
  while (true) {
    const auto reply = read_profiles(*stub, q, "profile", o.socket);
    if (!reply) return 1;
    if (o.json) {
      std::cout << to_json(*reply).dump(2) << "\n";
      return 0;
    }
    if (!live) {
      print_text(*reply, std::cout);
      return 0;
    }
    std::cout << "\x1b[H\x1b[2J"; // home, clear
    std::cout << "corral profile — every " << o.interval << " s, Ctrl-C to stop\n";
    print_text(*reply, std::cout);
    std::cout.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(o.interval * 1000)));
  }
}

} // namespace

void add_discover(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<DiscoverOptions>();
  auto* cmd = app.add_subcommand(
      "discover", "Write the least-permissive policy for a workload from what it ran and runs");
  cmd->add_option("WORKLOAD", o->workload, "Container name, pod name, or container id (prefix)")
      ->required();
  cmd->add_option("-n,--namespace", o->namespace_name, "The workload's namespace");
  cmd->add_option("--since", o->since,
                  "Only what was seen in this last while (30s, 10m, 1h); default: all recorded");
  cmd->add_option("-o,--output", o->output, "yaml (with a comment on each rule) or json")
      ->check(CLI::IsMember({"yaml", "json"}))
      ->capture_default_str();
  cmd->add_option("--name", o->name, "The policy's name (default: corral-<container name>)");
  add_socket_option(cmd, o->socket);
  cmd->footer(
      "The process allow-list holds every program the system monitor saw the workload run\n"
      "and every program it runs now (also those started before the agent); the file rules\n"
      "the directories of the files it opened and the network rules the protocols it used,\n"
      "when kubearmor-visibility records them. Apply it with posture block to allow only that.\n"
      "Example: corral discover nginx -n default > nginx-policy.yaml && corral validate -f "
      "nginx-policy.yaml");
  cmd->callback([o, &exit_code] { exit_code = discover(*o); });
}

void add_profile(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ProfileOptions>();
  auto* cmd = app.add_subcommand(
      "profile", "Show what each workload runs, opens and connects to, with counts and times");
  cmd->add_option("-n,--namespace", o->namespace_name, "Only this namespace");
  cmd->add_option("--pod", o->pod, "Only this pod");
  cmd->add_option("--container", o->container, "Only this container (name or id)");
  cmd->add_flag("--json", o->json, "One JSON document, once");
  cmd->add_flag("--once", o->once, "Print once and exit (also when stdout is a terminal)");
  cmd->add_option("--interval", o->interval, "Seconds between refreshes on a terminal")
      ->capture_default_str();
  add_socket_option(cmd, o->socket);
  cmd->footer("Refreshes in place on a terminal (like top); prints once when piped.\n"
              "Columns: kind, times seen, last seen, what. Files and connections are recorded\n"
              "for workloads annotated kubearmor-visibility=process,file,network.\n"
              "Example: corral profile -n default --container nginx");
  cmd->callback([o, &exit_code] { exit_code = profile(*o); });
}

} // namespace corral::cli
