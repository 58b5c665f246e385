#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/policy_files.h"
#include "core/strings.h"
#include "policy/decide.h"
#include "policy/names.h"

namespace corral::cli {
namespace {

struct ExplainOptions {
  std::vector<std::string> files;
  std::string namespace_name = "default";
  std::string labels;
  std::vector<std::string> ns_annotations;
  std::vector<std::string> pod_annotations;
  bool host = false;
  std::string node_labels;
  std::string exec, open, socket, capability;
  bool write = false;
  bool new_file = false;
  bool pts = false;
  std::string source;
  int uid = 0;
  int file_uid = 0;
  std::string output = "text";
  std::string file_posture = "audit", network_posture = "audit", capabilities_posture = "audit";
};

// "k=v,k=v" or a list of "k=v" into a map; false (with a message) on a malformed item.
bool parse_pairs(const std::vector<std::string>& items, const char* flag, policy::Labels& out) {
  for (const auto& item : items) {
    if (trim(item).empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "corral explain: " << flag << " '" << item << "' is not key=value\n";
      return false;
    }
    out[std::string(trim(item.substr(0, eq)))] = std::string(trim(item.substr(eq + 1)));
  }
  return true;
}

policy::Posture posture(const std::string& s) {
  return to_lower(s) == "block" ? policy::Posture::Block : policy::Posture::Audit;
}

int run(const ExplainOptions& o) {
  policy::Workload w;
  w.namespace_name = o.namespace_name;
  w.host = o.host;
  policy::Labels ns_annotations;
  if (!parse_pairs(split(o.labels, ','), "--labels", w.labels) ||
      !parse_pairs(split(o.node_labels, ','), "--node-labels", w.node_labels) ||
      !parse_pairs(o.ns_annotations, "--ns-annotation", ns_annotations) ||
      !parse_pairs(o.pod_annotations, "--pod-annotation", w.annotations))
    return 1;

  const auto parsed = load_policy_files(o.files);
  print_diagnostics(parsed.diagnostics);
  if (!parsed.ok()) return 1;

  std::vector<std::string> warnings;
  const policy::Postures global{posture(o.file_posture), posture(o.network_posture),
                                posture(o.capabilities_posture)};
  const auto settings = policy::resolve_settings(
      global, ns_annotations,
      policy::locked_by_any(parsed.policies, w) ? policy::Labels{} : w.annotations, &warnings);
  const auto rs = policy::compile(parsed.policies, w, settings);
  for (const auto& m : warnings) std::cerr << "warning: " << m << "\n";
  for (const auto& m : rs->warnings()) std::cerr << "warning: " << m << "\n";

  policy::Access access;
  std::string target;
  if (!o.exec.empty()) {
    access.category = policy::Category::Process;
    target = o.exec;
  } else if (!o.open.empty()) {
    access.category = policy::Category::File;
    target = o.open;
  } else if (!o.socket.empty()) {
    access.category = policy::Category::Network;
    target = policy::normalize_protocol(o.socket).value_or(o.socket);
  } else {
    access.category = policy::Category::Capabilities;
    target = policy::normalize_capability(o.capability).value_or(o.capability);
  }
  access.target = target;
  access.source = o.source;
  access.write = o.write;
  access.owner = o.uid == o.file_uid;
  access.shipped = !o.new_file;
  access.pts = o.pts;
  const policy::Verdict v = policy::decide(*rs, access);

  const policy::Rule* rule = v.rule != nullptr ? v.rule->rule : nullptr;
  nlohmann::json j = {{"verdict", v.allow ? "allow" : "deny"},
                      {"action", v.action.empty() ? "Allow" : std::string(v.action)},
                      {"policy", std::string(v.policy_name())},
                      {"severity", rule != nullptr ? std::to_string(rule->severity) : ""},
                      {"message", rule != nullptr ? rule->message : ""},
                      {"tags", rule != nullptr ? rule->tags.get() : std::vector<std::string>{}},
                      {"alert", v.alert},
                      {"rule", v.explain(*rs, access.category)},
                      {"lock", v.lock != nullptr ? v.lock->name : ""}};
  if (o.output == "json") {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "Verdict:    " << j["verdict"].get<std::string>() << "\n"
            << "Action:     " << j["action"].get<std::string>() << "\n"
            << "PolicyName: " << j["policy"].get<std::string>() << "\n"
            << "Severity:   " << j["severity"].get<std::string>() << "\n"
            << "Message:    " << j["message"].get<std::string>() << "\n"
            << "Tags:       " << join(j["tags"].get<std::vector<std::string>>(), ",") << "\n"
            << "Alert:      " << (v.alert ? "yes" : "no") << "\n"
            << "Rule:       " << j["rule"].get<std::string>() << "\n";
  if (v.lock != nullptr) std::cout << "Lock:       " << v.lock->name << " (corral.dev/lock)\n";
  return 0;
}

} // namespace

void add_explain(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ExplainOptions>();
  auto* cmd = app.add_subcommand(
      "explain", "Offline what-if: the verdict the given policies produce for one access by one "
                 "workload, and the rule (or default posture) that decided it.");
  cmd->add_option("-f,--file", o->files, "Policy file(s)")->required()->expected(1, -1);
  cmd->add_option("-n,--namespace", o->namespace_name, "The workload's namespace")
      ->capture_default_str();
  cmd->add_option("--labels", o->labels, "The workload's labels, k=v,k=v");
  cmd->add_option("--ns-annotation", o->ns_annotations,
                  "A namespace annotation k=v (repeatable), e.g. kubearmor-file-posture=block");
  cmd->add_option("--pod-annotation", o->pod_annotations,
                  "A pod annotation k=v (repeatable), e.g. kubearmor-policy=audited");
  cmd->add_flag("--host", o->host, "The workload is the node itself (host policies)");
  cmd->add_option("--node-labels", o->node_labels, "The node's labels, k=v,k=v (with --host)");
  auto* access = cmd->add_option_group("access", "The access to judge (exactly one)");
  access->add_option("--exec", o->exec, "An exec of this program path");
  access->add_option("--open", o->open, "An open of this file path");
  access->add_option("--socket", o->socket, "A socket of this protocol (tcp, udp, icmp, raw, ...)");
  access->add_option("--capability", o->capability, "A use of this capability (net_raw, ...)");
  access->require_option(1);
  cmd->add_flag("--write", o->write, "The open is for write, append or truncate");
  cmd->add_flag("--new-file", o->new_file,
                "The file was created, changed or moved in after the workload started (the "
                "implicit start-up set covers only files the image shipped)");
  cmd->add_flag("--pts", o->pts, "The process is on a terminal (rules with pts: false)");
  cmd->add_option("--source", o->source, "The acting program (for fromSource rules)");
  cmd->add_option("--uid", o->uid, "The process uid")->capture_default_str();
  cmd->add_option("--file-uid", o->file_uid, "The file's owner uid (ownerOnly)")
      ->capture_default_str();
  const std::vector<std::string> postures{"audit", "block"};
  cmd->add_option("--default-file-posture", o->file_posture, "Global file/process posture")
      ->check(CLI::IsMember(postures, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("--default-network-posture", o->network_posture, "Global network posture")
      ->check(CLI::IsMember(postures, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("--default-capabilities-posture", o->capabilities_posture,
                  "Global capabilities posture")
      ->check(CLI::IsMember(postures, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Example: corral explain -f examples/seed-only-allow-nginx-exec.yaml --labels app=nginx "
      "--ns-annotation kubearmor-file-posture=block --exec /usr/sbin/chroot -o json");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
