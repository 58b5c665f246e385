// Reading policy files given on the command line.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "policy/parser.h"

namespace corral::cli {

// The text of a policy file ("-" = standard input), or why it cannot be read.
Result<std::string> read_policy_text(const std::string& file);

// Parses every file ("-" = standard input); unreadable files become diagnostics.
policy::ParseResult load_policy_files(const std::vector<std::string>& files);

// Prints the diagnostics to stderr, errors and warnings alike.
void print_diagnostics(const std::vector<policy::Diagnostic>& diagnostics);

} // namespace corral::cli
