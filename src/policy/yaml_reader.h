// Typed, diagnosing access to a YamlTree: every read either yields a value or records
// a Diagnostic with line:column and field path, so a document reports all its errors.
// Internal to the parser.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <yaml-cpp/mark.h>

#include "policy/diagnostic.h"
#include "policy/model.h"
#include "policy/yaml_tree.h"

namespace corral::policy {

class YamlReader {
public:
  // `text` is the whole input, kept to turn yaml-cpp's byte offsets into line:column.
  YamlReader(std::string file, std::string_view text, size_t node_budget,
             std::vector<Diagnostic>& out);

  void error(const YamlNode& at, const std::string& field, std::string reason,
             std::string hint = {});
  void warning(const YamlNode& at, const std::string& field, std::string reason,
               std::string hint = {});
  // An error at a position yaml-cpp reported itself (a syntax error).
  void error_at(const YAML::Mark& mark, std::string reason, std::string hint);
  // An error at a byte offset of the text.
  void error_at(size_t offset, std::string reason, std::string hint);

  // Checks that `node` is a mapping whose keys are all in `allowed` (reporting unknown and
  // duplicate keys with the nearest valid name); false when it is not a mapping.
  bool expect_map(const YamlNode& node, const std::string& field,
                  std::span<const std::string_view> allowed);
  bool expect_seq(const YamlNode& node, const std::string& field);

  std::optional<std::string> string(const YamlNode& node, const std::string& field);
  std::optional<bool> boolean(const YamlNode& node, const std::string& field);
  std::optional<int> integer(const YamlNode& node, const std::string& field);
  std::optional<std::vector<std::string>> strings(const YamlNode& node, const std::string& field);
  // The value of one of `values` (case-insensitive), reported as an enum error otherwise.
  std::optional<std::string> choice(const YamlNode& node, const std::string& field,
                                    std::span<const std::string_view> values);

  // Counts `units` of work (a visited node, an item copied into a rule); false once the
  // input has used up its budget, which bounds time and memory for alias bombs and for
  // large spec-level tags inherited by many rules.
  bool spend(size_t units = 1);
  [[nodiscard]] size_t error_count() const { return errors_; }
  [[nodiscard]] const std::string& file() const { return file_; }
  // The same, as the rules read from it keep it (one copy for all).
  [[nodiscard]] const Shared<std::string>& shared_file() const { return shared_file_; }
  // The marks' own line and column are exact (read_block_yaml's: ASCII text, no byte order
  // mark), so positions need no look at the text.
  void use_mark_positions() { mark_positions_ = true; }
  // 1-based line and column (in characters) of `node`, as diagnostics report them.
  [[nodiscard]] std::pair<int, int> position(const YamlNode& node);

private:
  void add(Diagnostic::Level level, const YAML::Mark& mark, const std::string& field,
           std::string reason, std::string hint);
  YAML::Mark mark_of(const YamlNode& node);
  YAML::Mark before_empty(const YAML::Mark& mark);
  std::pair<int, int> locate(const YAML::Mark& mark);
  size_t offset_of(const YAML::Mark& mark) const;
  size_t line_index(size_t offset);

  std::string file_;
  Shared<std::string> shared_file_;
  std::string_view text_;
  size_t bom_ = 0; // yaml-cpp's offsets do not count a UTF-8 byte order mark
  bool mark_positions_ = false;
  std::vector<size_t> line_starts_;
  size_t budget_;
  bool budget_reported_ = false;
  size_t errors_ = 0;
  std::vector<Diagnostic>& out_;
  YAML::Mark last_mark_;
  // yaml-cpp marks an empty value (`key:` and nothing after it) at the token that follows,
  // often on a later line; the key's mark, by the value's offset, says where it really is.
  std::unordered_multimap<int, std::pair<YamlNode, YAML::Mark>> empty_values_;
};

// "a, b, c" for hints.
std::string list_of(std::span<const std::string_view> values);

// `value` in single quotes for a diagnostic: control characters escaped, and cut short
// after 60 characters so that one long value cannot flood the output.
std::string quote(std::string_view value);

// A mapping key as it appears in a field path: as it is when short and plain, else quoted.
std::string display_key(std::string_view key);

// The first byte sequence YAML does not allow (invalid UTF-8, or a control character other
// than tab, LF and CR): its offset in `text` and a description; nullopt when clean.
std::optional<std::pair<size_t, std::string>> find_invalid_text(std::string_view text);

} // namespace corral::policy
