#include "cli/policy_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace corral::cli {

Result<std::string> read_policy_text(const std::string& file) {
  if (file == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return errno_error("cannot read " + file, "check the path given with -f");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return errno_error("cannot read " + file, "is it a regular file?");
  return buf.str();
}

policy::ParseResult load_policy_files(const std::vector<std::string>& files) {
  policy::ParseResult all;
  for (const auto& file : files) {
    auto text = read_policy_text(file);
    if (!text) {
      all.diagnostics.push_back({policy::Diagnostic::Level::Error, file, 0, 0, "",
                                 text.error().message, text.error().hint});
      continue;
    }
    auto one = policy::parse_policies(*text, file == "-" ? "<stdin>" : file);
    all.policies.insert(all.policies.end(), one.policies.begin(), one.policies.end());
    all.diagnostics.insert(all.diagnostics.end(), one.diagnostics.begin(), one.diagnostics.end());
  }
  return all;
}

void print_diagnostics(const std::vector<policy::Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << d.to_string() << "\n";
}

} // namespace corral::cli
