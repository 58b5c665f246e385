// corral apply / corral delete: policies in and out of the agent.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/policy_files.h"

namespace corral::cli {
namespace {

struct Options {
  std::vector<std::string> files;
  std::string socket;
  std::string kind, name, namespace_name = "default";
};

// Reads and validates the files locally, so that a bad file never reaches the agent.
bool read_files(const std::vector<std::string>& files, const char* command,
                google::protobuf::RepeatedPtrField<api::PolicyFile>* out) {
  bool ok = true;
  for (const auto& f : files) {
    auto text = read_policy_text(f);
    if (!text) {
      std::cerr << "corral " << command << ": " << text.error().to_string() << "\n";
      ok = false;
      continue;
    }
    const std::string name = f == "-" ? "<stdin>" : f;
    const auto parsed = policy::parse_policies(*text, name);
    print_diagnostics(parsed.diagnostics);
    ok = ok && parsed.ok();
    auto* pf = out->Add();
    pf->set_name(name);
    pf->set_text(std::move(*text));
  }
  if (!ok)
    std::cerr << "corral " << command << ": invalid policy input; nothing was sent to the agent\n";
  return ok;
}

// The agent accepts requests of up to policy::kMaxApplyBytes.
bool fits(size_t bytes, const char* command) {
  if (bytes <= policy::kMaxApplyBytes) return true;
  std::cerr << "corral " << command << ": the policy files are " << bytes / (1024 * 1024)
            << " MiB together, more than the agent accepts in one request ("
            << policy::kMaxApplyBytes / (1024 * 1024)
            << " MiB); nothing was sent to the agent (hint: " << command
            << " the files in several runs)\n";
  return false;
}

int apply(const Options& o) {
  api::ApplyRequest req;
  req.set_who(who("apply"));
  if (!read_files(o.files, "apply", req.mutable_files())) return 1;
  if (!fits(req.ByteSizeLong(), "apply")) return 1;
  auto stub = connect(o.socket, "apply");
  if (!stub) return 1;
  api::ApplyReply reply;
  const auto status = stub->Apply(unary_context().get(), req, &reply);
  if (!status.ok()) return report(status, "apply", o.socket);
  for (const auto& w : reply.warnings()) std::cerr << "warning: " << w << "\n";
  for (const auto& l : reply.configured()) std::cout << l << "\n";
  return report_failed(reply.failed(), "apply");
}

int remove(const Options& o) {
  api::DeleteRequest req;
  req.set_who(who("delete"));
  if (!o.files.empty()) {
    if (!read_files(o.files, "delete", req.mutable_files())) return 1;
    if (!fits(req.ByteSizeLong(), "delete")) return 1;
  } else if (o.kind.empty() || o.name.empty()) {
    std::cerr << "corral delete: give -f FILE, or KIND NAME (hint: corral delete "
                 "KubeArmorPolicy only-allow-nginx-exec -n default)\n";
    return 1;
  } else {
    req.set_kind(o.kind);
    req.set_name(o.name);
    req.set_namespace_(o.namespace_name);
  }
  auto stub = connect(o.socket, "delete");
  if (!stub) return 1;
  api::DeleteReply reply;
  const auto status = stub->Delete(unary_context().get(), req, &reply);
  if (!status.ok()) return report(status, "delete", o.socket);
  for (const auto& l : reply.deleted()) std::cout << l << "\n";
  return report_failed(reply.failed(), "delete");
}

} // namespace

void add_apply(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "apply", "Apply KubeArmor policies to the agent. Files are validated first; if any is "
               "invalid nothing is applied. Conflicting rules are printed as warnings.");
  cmd->add_option("-f,--file", o->files, "Policy file(s); - for stdin")
      ->required()
      ->expected(1, -1);
  add_socket_option(cmd, o->socket);
  cmd->footer("Example: corral apply -f examples/seed-only-allow-nginx-exec.yaml");
  cmd->callback([o, &exit_code] { exit_code = apply(*o); });
}

void add_delete(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "delete", "Delete policies from the agent (enforcement is lifted at once): those a file "
                "defines, or one by KIND NAME.");
  cmd->add_option("-f,--file", o->files, "Delete the policies these files define");
  cmd->add_option("kind", o->kind,
                  "KubeArmorPolicy (ksp), KubeArmorClusterPolicy (csp), "
                  "KubeArmorHostPolicy (hsp)");
  cmd->add_option("name", o->name, "The policy's name");
  cmd->add_option("-n,--namespace", o->namespace_name, "Namespace of a KubeArmorPolicy")
      ->capture_default_str();
  add_socket_option(cmd, o->socket);
  cmd->footer("Examples: corral delete -f policy.yaml\n"
              "          corral delete KubeArmorPolicy only-allow-nginx-exec -n default");
  cmd->callback([o, &exit_code] { exit_code = remove(*o); });
}

} // namespace corral::cli
