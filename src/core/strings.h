// Small string helpers shared by every layer.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace corral {

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
std::string join(std::span<const std::string> parts, std::string_view sep);

// Levenshtein distance, for "did you mean" hints on typos.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` (case-insensitive), or "" when none is close enough
// to be a plausible typo (distance > max(2, len/3)).
std::string nearest(std::string_view word, std::span<const std::string_view> candidates);

} // namespace corral

#include <unordered_map>

namespace corral {

// Hash and equality that let a std::string-keyed map be searched with a string_view
// without building a std::string (hot paths look up kernel paths this way).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

} // namespace corral
