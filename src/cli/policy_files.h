// Reading policy files given on the command line.
#pragma once

#include <string>
#include <vector>

#include "policy/parser.h"

namespace corral::cli {

// Parses every file ("-" = standard input); unreadable files become diagnostics.
policy::ParseResult load_policy_files(const std::vector<std::string>& files);

// Prints the diagnostics to stderr, errors and warnings alike.
void print_diagnostics(const std::vector<policy::Diagnostic>& diagnostics);

} // namespace corral::cli
