// corral: the command-line interface of Corral.
#include <exception>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"corral - contain compromised containers: allow-list what they may run, block the "
               "rest, log every attempt.\nReads KubeArmor policies unchanged."};
  app.name("corral");
  app.require_subcommand(1);
  app.footer("Run 'corral COMMAND --help' for a command's flags and an example.");
  int exit_code = 0;
  corral::cli::add_version(app, exit_code);
  corral::cli::add_validate(app, exit_code);
  corral::cli::add_explain(app, exit_code);
  corral::cli::add_apply(app, exit_code);
  corral::cli::add_delete(app, exit_code);
  corral::cli::add_get(app, exit_code);
  corral::cli::add_annotate(app, exit_code);
  corral::cli::add_logs(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "corral: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}
