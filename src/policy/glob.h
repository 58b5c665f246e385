// Glob patterns of matchPatterns: `*` within one path component, `**` across components,
// `?` one character other than '/', `[...]` a character class (`[!...]`/`[^...]` negated,
// ranges a-z). Everything else is literal.
#pragma once

#include <string>
#include <string_view>

namespace corral::policy {

bool glob_match(std::string_view pattern, std::string_view path);

// The directory part of `pattern` before its first wildcard, ending in '/':
// "/var/log/*.log" -> "/var/log/", "/**/x" -> "/". Used to index patterns by prefix.
std::string_view glob_literal_dir(std::string_view pattern);

} // namespace corral::policy
