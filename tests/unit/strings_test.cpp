// core/strings.h: the helpers behind comma lists and "did you mean" hints.
#include <array>

#include <gtest/gtest.h>

#include "core/strings.h"

namespace corral {
namespace {

using Strings = std::vector<std::string>;

TEST(Strings, Split) {
  EXPECT_EQ(split("a,b,c", ','), (Strings{"a", "b", "c"}));
  EXPECT_EQ(split("a", ','), (Strings{"a"}));
  EXPECT_EQ(split("", ','), (Strings{""}));
  EXPECT_EQ(split("a,,b,", ','), (Strings{"a", "", "b", ""}));
}

TEST(Strings, TrimAndLower) {
  EXPECT_EQ(trim("  a b \t\n"), "a b");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(to_lower("CAP_Net_RAW"), "cap_net_raw");
  EXPECT_EQ(to_lower("é"), "é"); // bytes above ASCII are left alone
}

TEST(Strings, Join) {
  const Strings parts = {"a", "b", "c"};
  EXPECT_EQ(join(parts, ", "), "a, b, c");
  EXPECT_EQ(join(Strings{}, ","), "");
}

TEST(Strings, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("matchPath", "matchPaths"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Strings, Nearest) {
  constexpr std::array<std::string_view, 3> kFields = {"matchPaths", "matchDirectories",
                                                       "matchPatterns"};
  EXPECT_EQ(nearest("matchPath", kFields), "matchPaths");
  EXPECT_EQ(nearest("MATCHPATHS", kFields), "matchPaths");
  EXPECT_EQ(nearest("matchDirectory", kFields), "matchDirectories");
  EXPECT_EQ(nearest("zzzzzz", kFields), "");
  EXPECT_EQ(nearest("", kFields), "");
}

} // namespace
} // namespace corral
