// corral: the command-line interface of Corral.
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"

namespace {

// Flags common to every command (--socket) are accepted before the command too, as kubectl
// and karmor take them: `corral --socket S get status` is read as `corral get --socket S
// status`.
std::vector<std::string> command_first(int argc, char** argv) {
  std::vector<std::string> global, rest;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--socket" && i + 1 < argc) {
      global.insert(global.end(), {argv[i], argv[i + 1]});
      ++i;
    } else if (a.starts_with("--socket=")) {
      global.emplace_back(a);
    } else {
      break;
    }
  }
  std::vector<std::string> out{argv[0]};
  if (i < argc) out.emplace_back(argv[i++]); // the command
  out.insert(out.end(), global.begin(), global.end());
  for (; i < argc; ++i) out.emplace_back(argv[i]);
  return out;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"corral - contain compromised containers: allow-list what they may run, block the "
               "rest, log every attempt.\nReads KubeArmor policies unchanged."};
  app.name("corral");
  app.require_subcommand(1);
  app.footer("Run 'corral COMMAND --help' for a command's flags and an example.");
  int exit_code = 0;
  corral::cli::add_version(app, exit_code);
  corral::cli::add_probe(app, exit_code);
  corral::cli::add_validate(app, exit_code);
  corral::cli::add_explain(app, exit_code);
  corral::cli::add_apply(app, exit_code);
  corral::cli::add_delete(app, exit_code);
  corral::cli::add_get(app, exit_code);
  corral::cli::add_annotate(app, exit_code);
  corral::cli::add_logs(app, exit_code);
  corral::cli::add_profile(app, exit_code);
  corral::cli::add_discover(app, exit_code);
  corral::cli::add_contain(app, exit_code);
  corral::cli::add_verify(app, exit_code);
  try {
    auto args = command_first(argc, argv);
    std::vector<char*> ptrs;
    for (auto& a : args) ptrs.push_back(a.data());
    app.parse(static_cast<int>(ptrs.size()), ptrs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "corral: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}
