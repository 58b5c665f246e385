// The parser's text helpers (policy/yaml_reader.h): what diagnostics quote, and which bytes
// are refused before YAML parsing.
#include <gtest/gtest.h>

#include "policy/yaml_reader.h"

namespace corral::policy {
namespace {

TEST(YamlReader, Quoted) {
  EXPECT_EQ(quote("abc"), "'abc'");
  EXPECT_EQ(quote(""), "''");
  EXPECT_EQ(quote("a\tb\nc\x1b"), "'a\\tb\\nc\\x1b'");
  const std::string long_value(100, 'x');
  EXPECT_EQ(quote(long_value), "'" + std::string(60, 'x') + "...'");
  // Never cut inside a UTF-8 sequence.
  const std::string accents = std::string(59, 'x') + "éé";
  EXPECT_EQ(quote(accents), "'" + std::string(59, 'x') + "...'");
}

TEST(YamlReader, DisplayKey) {
  EXPECT_EQ(display_key("matchPaths"), "matchPaths");
  EXPECT_EQ(display_key("kubernetes.io/hostname"), "'kubernetes.io/hostname'");
  EXPECT_EQ(display_key(""), "''");
  EXPECT_EQ(display_key("a\x01"), "'a\\x01'");
}

TEST(YamlReader, FindInvalidText) {
  EXPECT_EQ(find_invalid_text("a: b\n\tc: \"é ü 日本 🚫\"\r\n"), std::nullopt);
  EXPECT_EQ(find_invalid_text("\xEF\xBB\xBF"
                              "a: b"),
            std::nullopt);
  const auto nul = find_invalid_text(std::string("ab\0", 3));
  ASSERT_TRUE(nul.has_value());
  EXPECT_EQ(nul->first, 2u);
  EXPECT_EQ(nul->second, "control character U+0000 is not allowed in YAML");
  const auto bad = find_invalid_text("é\xff");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->first, 2u);
  EXPECT_EQ(bad->second, "invalid UTF-8 byte 0xff");
  EXPECT_EQ(find_invalid_text("\xef\xbf\xbe")->second,
            "control character U+FFFE is not allowed in YAML");
  EXPECT_TRUE(find_invalid_text("\xf0\x9f\x9a")); // truncated at the end
}

} // namespace
} // namespace corral::policy
