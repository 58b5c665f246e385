// corral get policies|workloads|status|history
#include <ctime>
#include <iomanip>
#include <iostream>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "core/strings.h"

namespace corral::cli {
namespace {

struct Options {
  std::string what;
  std::string namespace_name;
  std::string output = "text";
  std::string socket;
  bool ready = false;
};

YAML::Node to_yaml(const nlohmann::json& j) {
  YAML::Node n;
  if (j.is_object()) {
    n = YAML::Node(YAML::NodeType::Map);
    for (const auto& [k, v] : j.items()) n[k] = to_yaml(v);
  } else if (j.is_array()) {
    n = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& v : j) n.push_back(to_yaml(v));
  } else if (j.is_string()) {
    n = j.get<std::string>();
  } else if (j.is_null()) {
    n = YAML::Node(YAML::NodeType::Null);
  } else {
    n = j.dump(); // numbers and booleans, as JSON spells them
  }
  return n;
}

// -o json prints the reply message as JSON (the proto's field names); -o yaml the same
// document as YAML.
int print_message(const google::protobuf::Message& m, const std::string& output) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &json, opts);
  if (output == "yaml") {
    YAML::Emitter out;
    out << to_yaml(nlohmann::json::parse(json));
    std::cout << out.c_str() << "\n";
    return 0;
  }
  std::cout << json << (json.ends_with("\n") ? "" : "\n");
  return 0;
}

std::string labels_of(const google::protobuf::Map<std::string, std::string>& labels) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(k + "=" + v);
  std::sort(parts.begin(), parts.end());
  return join(parts, ",");
}

void row(const std::vector<std::string>& cells, const std::vector<int>& widths) {
  for (size_t i = 0; i < cells.size(); ++i) {
    std::cout << std::left << std::setw(i + 1 < cells.size() ? widths[i] : 0) << cells[i];
  }
  std::cout << "\n";
}

int policies(api::Agent::Stub& stub, const Options& o) {
  api::ListRequest req;
  req.set_namespace_(o.namespace_name);
  api::PolicyList reply;
  const auto status = stub.ListPolicies(unary_context().get(), req, &reply);
  if (!status.ok()) return report(status, "get", o.socket);
  if (o.output == "json" || o.output == "yaml") return print_message(reply, o.output);
  const bool wide = o.output == "wide";
  if (reply.policies_size() == 0) {
    std::cerr << "No policies applied"
              << (o.namespace_name.empty() ? "" : " in namespace " + o.namespace_name) << "\n";
    return 0;
  }
  // SOURCE: where the policy came from, "local" (corral apply) or "kubernetes" (the API;
  // -o wide adds its uid and resourceVersion).
  const std::vector<int> w{24, 12, 32, 7, 10, 12};
  row({"KIND", "NAMESPACE", "NAME", "RULES", "WORKLOADS", "SOURCE", wide ? "APPLIED" : ""}, w);
  for (const auto& p : reply.policies()) {
    std::string source = wide ? p.source() : p.source().substr(0, p.source().find(' '));
    if (source.ends_with(':')) source.pop_back(); // "kubernetes: manager …"
    row({p.kind(), p.namespace_().empty() ? "-" : p.namespace_(),
         p.name() + (p.locked() ? " (locked)" : ""), std::to_string(p.rules()),
         std::to_string(p.workloads_size()), source.empty() ? "local" : source,
         wide ? p.applied() : ""},
        w);
  }
  return 0;
}

int workloads(api::Agent::Stub& stub, const Options& o) {
  api::ListRequest req;
  req.set_namespace_(o.namespace_name);
  api::WorkloadList reply;
  const auto status = stub.ListWorkloads(unary_context().get(), req, &reply);
  if (!status.ok()) return report(status, "get", o.socket);
  if (o.output == "json" || o.output == "yaml") return print_message(reply, o.output);
  const bool wide = o.output == "wide";
  if (reply.workloads_size() == 0) {
    std::cerr << "No workloads"
              << (o.namespace_name.empty() ? std::string()
                                           : " in namespace " + o.namespace_name +
                                                 " (hint: `corral get workloads` lists every "
                                                 "namespace's)")
              << "\n";
    return 0;
  }
  // ENFORCEMENT comes last: "NOT ENFORCED: <reason>" is long.
  std::vector<int> w{12, 16, 20, 8, 10, 13, 24};
  std::vector<std::string> head{"NAMESPACE", "NAME",         "ID",       "PID",
                                "ENFORCER",  "FILE-POSTURE", "POLICIES", "ENFORCEMENT"};
  if (wide) {
    w.insert(w.end(), {14, 17, 24});
    head.insert(head.end() - 1, {"LABELS", "RULES", "SECTIONS"});
  }
  row(head, w);
  int failed = 0, stale = 0;
  for (const auto& x : reply.workloads()) {
    std::vector<std::string> names(x.policies().begin(), x.policies().end());
    std::vector<std::string> cells{x.namespace_(),
                                   x.name(),
                                   wide ? x.id() : x.id().substr(0, 12),
                                   std::to_string(x.pid()),
                                   x.enforcer(),
                                   x.file_posture(),
                                   names.empty() ? "-" : join(names, ","),
                                   x.enforcement().empty() ? "-" : x.enforcement()};
    if (wide) {
      std::vector<std::string> sections(x.sections().begin(), x.sections().end());
      cells.insert(cells.end() - 1, {labels_of(x.labels()),
                                     x.rules_fingerprint().empty() ? "-" : x.rules_fingerprint(),
                                     sections.empty() ? "-" : join(sections, ",")});
    }
    row(cells, w);
    failed += x.enforcement().starts_with("NOT ENFORCED") ? 1 : 0;
    stale += x.enforcement().starts_with("STALE") ? 1 : 0;
  }
  if (failed > 0) {
    std::cerr << "error: " << failed << " workload" << (failed == 1 ? " is" : "s are")
              << " NOT ENFORCED: the policies selecting them are not applied in the kernel "
                 "(hint: see the reason above and `corral logs`)\n";
  }
  if (stale > 0) {
    std::cerr << "error: " << stale << " workload" << (stale == 1 ? " runs" : "s run")
              << " on STALE RULES: their policies changed and the change could not be "
                 "enforced; their previous rules stay in force and the agent retries\n";
  }
  return 0;
}

// --ready (the DaemonSet's readiness probe): an agent that answers but enforces nothing, or
// has never heard from the Kubernetes API it takes its policies from, is not ready.
int not_ready(const api::StatusReply& r) {
  if (r.enforcer() == "none") {
    std::cerr << "corral get status --ready: the agent enforces nothing (enforcer none; its log "
                 "says why, e.g. a missing capability)\n";
    return 1;
  }
  if (r.has_kubernetes() && r.kubernetes().last_sync() == 0) {
    std::cerr << "corral get status --ready: the agent has not synced with the Kubernetes API yet"
              << (r.kubernetes().error().empty() ? "" : ": " + r.kubernetes().error()) << "\n";
    return 1;
  }
  return 0;
}

int status(api::Agent::Stub& stub, const Options& o) {
  api::StatusReply reply;
  const auto s = stub.Status(unary_context().get(), api::StatusRequest(), &reply);
  if (!s.ok()) return report(s, "get", o.socket);
  const int rc = o.ready ? not_ready(reply) : 0;
  if (o.output == "json" || o.output == "yaml") return print_message(reply, o.output), rc;
  std::cout << "Version:            " << reply.version() << "\n"
            << "Cluster / host:     " << reply.cluster_name() << " / " << reply.host_name() << "\n"
            << "Enforcer:           " << reply.enforcer() << "\n"
            << "Default postures:   file=" << reply.default_file_posture()
            << " network=" << reply.default_network_posture()
            << " capabilities=" << reply.default_capabilities_posture() << "\n"
            << "Policies:           " << reply.policies() << "\n"
            << "Workloads:          " << reply.workloads() << " (" << reply.enforced()
            << " enforced"
            << (reply.not_enforced() > 0 ? ", " + std::to_string(reply.not_enforced()) +
                                               " NOT ENFORCED: see `corral get workloads`"
                                         : std::string())
            << (reply.stale() > 0 ? ", " + std::to_string(reply.stale()) +
                                        " on STALE RULES: see `corral get workloads`"
                                  : std::string())
            << ")\n"
            << "Permission events:  " << reply.events() << " (" << reply.denied() << " denied)\n"
            << "Allowed on error:   " << reply.errors_allowed() << "\n"
            << "Allowed on timeout: " << reply.timeouts_allowed() << "\n"
            << "Denied on timeout:  " << reply.timeouts_denied() << "\n"
            << "Alerts:             " << reply.alerts() << " (" << reply.alerts_dropped()
            << " evicted from memory)\n"
            << "Visibility logs:    " << reply.logs() << " (" << reply.logs_dropped()
            << " evicted from memory)\n";
  if (reply.has_kubernetes()) {
    const auto& k = reply.kubernetes();
    std::string since = "never synced";
    if (k.last_sync() > 0) {
      const int64_t ago = std::max<int64_t>(0, std::time(nullptr) - k.last_sync());
      since = "last sync " + std::to_string(ago) + " s ago";
    }
    std::cout << "Kubernetes API:     " << k.state() << " " << k.server() << " (" << k.config()
              << "; node " << k.node() << ", " << k.pods() << " pods; " << since << "; "
              << k.watch_restarts() << " watch restarts, " << k.relists() << " relists)"
              << (k.error().empty() ? std::string() : "; last error: " + k.error()) << "\n";
  }
  for (const auto& [k, v] : reply.counters()) {
    std::cout << std::left << std::setw(20) << (k + ":") << v << "\n";
  }
  return rc;
}

// The change log, oldest first (issue 12).
int history(api::Agent::Stub& stub, const Options& o) {
  api::HistoryRequest req;
  req.set_namespace_(o.namespace_name);
  api::HistoryReply reply;
  const auto s = stub.History(unary_context().get(), req, &reply);
  if (!s.ok()) return report(s, "get", o.socket);
  if (o.output == "json" || o.output == "yaml") return print_message(reply, o.output);
  const std::vector<int> widths{6, 29, 10, 48, 14};
  row({"SEQ", "TIME", "ACTION", "OBJECT", "DIGEST", "SOURCE"}, widths);
  for (const auto& e : reply.entries()) {
    row({std::to_string(e.seq()), e.time(), e.action(), e.object(),
         e.digest().empty() ? "-" : e.digest().substr(0, 12), e.source()},
        widths);
    if (o.output == "wide") std::cout << "      " << e.summary() << "\n";
  }
  return 0;
}

int run(const Options& o) {
  auto stub = connect(o.socket, "get");
  if (!stub) return 1;
  if (o.what == "policies" || o.what == "policy") return policies(*stub, o);
  if (o.what == "workloads" || o.what == "workload") return workloads(*stub, o);
  if (o.what == "history") return history(*stub, o);
  return status(*stub, o);
}

} // namespace

void add_get(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd =
      app.add_subcommand("get", "Show the agent's policies, workloads, status or change history");
  cmd->add_option("what", o->what,
                  "policies, workloads, status, or history (every policy and namespace-"
                  "annotation change, hash-chained; -o wide adds each change's summary)")
      ->required()
      ->check(CLI::IsMember({"policies", "policy", "workloads", "workload", "status", "history"}));
  cmd->add_option("-n,--namespace", o->namespace_name, "Only this namespace");
  cmd->add_option("-o,--output", o->output, "text, wide, json or yaml")
      ->check(CLI::IsMember({"text", "wide", "json", "yaml"}))
      ->capture_default_str();
  cmd->add_flag("--ready", o->ready,
                "With status: exit 1 unless the agent enforces (an enforcer is loaded) and, in "
                "Kubernetes mode, has synced with the API once (a readiness probe)");
  add_socket_option(cmd, o->socket);
  cmd->footer("Examples: corral get workloads -o wide\n          corral get status --ready\n"
              "          corral get history -n default -o json");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
