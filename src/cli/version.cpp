#include "core/version.h"

#include <iostream>

#include "cli/commands.h"

namespace corral::cli {

void add_version(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("version", "Print the version of corral");
  cmd->footer("Example: corral version");
  cmd->callback([&exit_code] {
    std::cout << "corral " << kVersion << " (" << kGitCommit << ")\n";
    exit_code = 0;
  });
}

} // namespace corral::cli
