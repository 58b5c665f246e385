#include "policy/glob.h"

namespace corral::policy {
namespace {

// Matches a class starting at pattern[pi] == '['; advances pi past ']'.
bool class_match(std::string_view p, size_t& pi, char c) {
  size_t i = pi + 1;
  const bool negate = i < p.size() && (p[i] == '!' || p[i] == '^');
  if (negate) ++i;
  bool found = false;
  bool first = true;
  for (; i < p.size() && (p[i] != ']' || first); ++i, first = false) {
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      found = found || (p[i] <= c && c <= p[i + 2]);
      i += 2;
    } else {
      found = found || p[i] == c;
    }
  }
  pi = i + 1; // past ']' (the parser guarantees it exists)
  return found != negate && c != '/';
}

bool match_from(std::string_view p, size_t pi, std::string_view t, size_t ti) {
  while (pi < p.size()) {
    const char c = p[pi];
    if (c == '*') {
      const bool deep = pi + 1 < p.size() && p[pi + 1] == '*';
      pi += deep ? 2 : 1;
      if (pi == p.size()) return deep || t.find('/', ti) == std::string_view::npos;
      for (size_t k = ti; k <= t.size(); ++k) {
        if (match_from(p, pi, t, k)) return true;
        if (k < t.size() && t[k] == '/' && !deep) return false;
      }
      return false;
    }
    if (ti == t.size()) return false;
    if (c == '[') {
      if (!class_match(p, pi, t[ti])) return false;
    } else {
      if (c == '?' ? t[ti] == '/' : c != t[ti]) return false;
      ++pi;
    }
    ++ti;
  }
  return ti == t.size();
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
  return match_from(pattern, 0, path, 0);
}

std::string_view glob_literal_dir(std::string_view pattern) {
  const size_t wild = pattern.find_first_of("*?[");
  const size_t slash = pattern.rfind('/', wild == std::string_view::npos ? pattern.size() : wild);
  return pattern.substr(0, slash == std::string_view::npos ? 0 : slash + 1);
}

} // namespace corral::policy
