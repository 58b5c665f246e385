#include "policy/glob.h"

#include <algorithm>
#include <cstdint>
#include <vector>

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

// Backtracking: fastest for the usual patterns with one or two stars, but exponential in
// the number of stars, so only used for those.
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

// The pattern is simulated as an NFA over its positions (each position a token: a literal,
// '?', a class, '*' or '**'), one text character at a time: O(pattern x path) whatever the
// stars, where backtracking would be exponential in the number of '**'.
bool match_nfa(std::string_view p, std::string_view t, uint8_t* cur, uint8_t* next) {
  const size_t n = p.size();
  const auto star_len = [&](size_t i) -> size_t {
    if (p[i] != '*') return 0;
    return i + 1 < n && p[i + 1] == '*' ? 2 : 1;
  };
  // A star may match nothing: a state at a star also stands at the token after it.
  const auto close = [&](uint8_t* set) {
    for (size_t i = 0; i < n; ++i) {
      if (set[i] != 0 && star_len(i) != 0) set[i + star_len(i)] = 1;
    }
  };
  std::fill(cur, cur + n + 1, 0);
  cur[0] = 1;
  close(cur);
  for (const char c : t) {
    std::fill(next, next + n + 1, 0);
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      if (cur[i] == 0) continue;
      if (const size_t len = star_len(i); len != 0) {
        if (len == 2 || c != '/') next[i] = 1; // '*' stays within one component
      } else if (p[i] == '[') {
        size_t after = i;
        if (class_match(p, after, c)) next[after] = 1;
      } else if (p[i] == '?' ? c != '/' : p[i] == c) {
        next[i + 1] = 1;
      } else {
        continue;
      }
      any = true;
    }
    if (!any) return false;
    close(next);
    std::swap(cur, next);
  }
  return cur[n] != 0;
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
  constexpr size_t kMaxBacktrackingStars = 2;
  if (static_cast<size_t>(std::count(pattern.begin(), pattern.end(), '*')) <=
      kMaxBacktrackingStars) {
    return match_from(pattern, 0, path, 0);
  }
  constexpr size_t kInline = 256; // no allocation for patterns shorter than this
  if (pattern.size() < kInline) {
    uint8_t a[kInline];
    uint8_t b[kInline];
    return match_nfa(pattern, path, a, b);
  }
  std::vector<uint8_t> a(pattern.size() + 1);
  std::vector<uint8_t> b(pattern.size() + 1);
  return match_nfa(pattern, path, a.data(), b.data());
}

std::string_view glob_literal_dir(std::string_view pattern) {
  const size_t wild = pattern.find_first_of("*?[");
  const size_t slash = pattern.rfind('/', wild == std::string_view::npos ? pattern.size() : wild);
  return pattern.substr(0, slash == std::string_view::npos ? 0 : slash + 1);
}

} // namespace corral::policy
