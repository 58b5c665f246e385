// corral annotate ns NS key=value... — the seed's `kubectl annotate ns` step, for the agent.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"

namespace corral::cli {
namespace {

struct Options {
  std::string resource;
  std::string name;
  std::vector<std::string> pairs;
  bool overwrite = false;
  std::string socket;
};

int run(const Options& o) {
  if (o.resource != "ns" && o.resource != "namespace" && o.resource != "namespaces") {
    std::cerr << "corral annotate: only namespaces can be annotated, not '" << o.resource
              << "' (hint: corral annotate ns default kubearmor-file-posture=block)\n";
    return 1;
  }
  api::AnnotateRequest req;
  req.set_who(who("annotate"));
  req.set_namespace_(o.name);
  req.set_overwrite(o.overwrite);
  for (const auto& p : o.pairs) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos && p.ends_with("-") && p.size() > 1) {
      req.add_remove(p.substr(0, p.size() - 1)); // kubectl's "key-" removes the annotation
    } else if (eq == std::string::npos || eq == 0) {
      std::cerr << "corral annotate: '" << p << "' is not key=value or key- (hint: "
                << "kubearmor-file-posture=block)\n";
      return 1;
    } else {
      (*req.mutable_set())[p.substr(0, eq)] = p.substr(eq + 1);
    }
  }
  auto stub = connect(o.socket, "annotate");
  if (!stub) return 1;
  api::AnnotateReply reply;
  const auto status = stub->Annotate(unary_context().get(), req, &reply);
  if (!status.ok()) return report(status, "annotate", o.socket);
  for (const auto& w : reply.warnings()) std::cerr << "warning: " << w << "\n";
  std::cout << "namespace/" << o.name << " annotated\n";
  return report_failed(reply.failed(), "annotate");
}

} // namespace

void add_annotate(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "annotate",
      "Set a namespace's annotations: kubearmor-file-posture, kubearmor-network-posture, "
      "kubearmor-capabilities-posture (audit|block), kubearmor-policy (enabled|audited|"
      "disabled), kubearmor-visibility, corral.io/exec-image-only (true|false: false lets an "
      "allowed path run a file changed after the workload started). `key-` removes one.");
  cmd->add_option("resource", o->resource, "ns")->required();
  cmd->add_option("name", o->name, "The namespace")->required();
  cmd->add_option("annotations", o->pairs, "key=value ...")->required()->expected(1, -1);
  cmd->add_flag("--overwrite", o->overwrite, "Replace an annotation that already has a value");
  add_socket_option(cmd, o->socket);
  cmd->footer("Example: corral annotate ns default kubearmor-file-posture=block --overwrite");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
