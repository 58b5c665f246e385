#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/policy_files.h"
#include "policy/ruleset.h"

namespace corral::cli {
namespace {

struct ValidateOptions {
  std::vector<std::string> files;
};

// Conflicts between rules of one policy show without any workload: compile each policy
// for a workload it is sure to select.
std::vector<std::string> conflicts(const policy::PolicyPtr& p) {
  policy::Workload w;
  w.namespace_name = p->namespace_name;
  w.labels = p->selector.match_labels;
  w.host = p->kind == policy::Kind::HostPolicy;
  w.node_labels = p->selector.match_labels;
  return policy::compile({p}, w, policy::Settings{})->warnings();
}

int run(const ValidateOptions& o) {
  const auto result = load_policy_files(o.files);
  print_diagnostics(result.diagnostics);
  if (!result.ok()) {
    std::cerr << "corral validate: invalid policy input; nothing is valid until every error is "
                 "fixed\n";
    return 1;
  }
  for (const auto& p : result.policies) {
    size_t counts[4] = {};
    for (const auto& r : p->rules) ++counts[static_cast<int>(r.category)];
    std::cout << p->origin.file << ":" << p->origin.line << ": " << policy::to_string(p->kind)
              << "/" << p->name;
    if (p->kind == policy::Kind::Policy) std::cout << " (namespace " << p->namespace_name << ")";
    std::cout << " valid: " << counts[0] << " process, " << counts[1] << " file, " << counts[2]
              << " network, " << counts[3] << " capabilities rules\n";
    for (const auto& w : conflicts(p)) std::cerr << p->origin.file << ": warning: " << w << "\n";
  }
  return 0;
}

} // namespace

void add_validate(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<ValidateOptions>();
  auto* cmd = app.add_subcommand(
      "validate", "Check KubeArmor policy files: print a summary per policy, or every error with "
                  "file:line:column, the field and a hint (exit 1). Nothing is applied.");
  cmd->add_option("-f,--file", opts->files,
                  "Policy file(s) (YAML, several documents allowed; - "
                  "for stdin)")
      ->required()
      ->expected(1, -1);
  cmd->footer("Example: corral validate -f examples/seed-only-allow-nginx-exec.yaml");
  cmd->callback([opts, &exit_code] { exit_code = run(*opts); });
}

} // namespace corral::cli
