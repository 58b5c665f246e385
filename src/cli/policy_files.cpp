#include "cli/policy_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace corral::cli {

policy::ParseResult load_policy_files(const std::vector<std::string>& files) {
  policy::ParseResult all;
  for (const auto& file : files) {
    std::string text;
    if (file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream buf;
      if (!in || !(buf << in.rdbuf() || in.peek() == EOF)) {
        all.diagnostics.push_back({policy::Diagnostic::Level::Error, file, 0, 0, "",
                                   std::string("cannot read: ") + std::strerror(errno),
                                   "check the path given with -f"});
        continue;
      }
      text = buf.str();
    }
    auto one = policy::parse_policies(text, file == "-" ? "<stdin>" : file);
    all.policies.insert(all.policies.end(), one.policies.begin(), one.policies.end());
    all.diagnostics.insert(all.diagnostics.end(), one.diagnostics.begin(), one.diagnostics.end());
  }
  return all;
}

void print_diagnostics(const std::vector<policy::Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << d.to_string() << "\n";
}

} // namespace corral::cli
