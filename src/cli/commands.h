// The corral subcommands. Each add_* registers one command on the app and stores its
// exit code in `exit_code` when it runs.
#pragma once

#include <CLI/CLI.hpp>

namespace corral::cli {

void add_version(CLI::App& app, int& exit_code);
void add_validate(CLI::App& app, int& exit_code);
void add_explain(CLI::App& app, int& exit_code);
void add_apply(CLI::App& app, int& exit_code);
void add_delete(CLI::App& app, int& exit_code);
void add_get(CLI::App& app, int& exit_code);
void add_annotate(CLI::App& app, int& exit_code);
void add_logs(CLI::App& app, int& exit_code);
void add_probe(CLI::App& app, int& exit_code);
void add_profile(CLI::App& app, int& exit_code);
void add_discover(CLI::App& app, int& exit_code);
void add_contain(CLI::App& app, int& exit_code);
void add_verify(CLI::App& app, int& exit_code);

} // namespace corral::cli
