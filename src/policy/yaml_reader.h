// Typed, diagnosing access to a yaml-cpp tree: every read either yields a value or records
// a Diagnostic with line:column and field path, so a document reports all its errors.
// Internal to the parser.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "policy/diagnostic.h"

namespace corral::policy {

class YamlReader {
public:
  YamlReader(std::string file, size_t node_budget, std::vector<Diagnostic>& out)
      : file_(std::move(file)), budget_(node_budget), out_(out) {}

  void error(const YAML::Node& at, const std::string& field, std::string reason,
             std::string hint = {});
  void warning(const YAML::Node& at, const std::string& field, std::string reason,
               std::string hint = {});

  // Checks that `node` is a mapping whose keys are all in `allowed` (reporting unknown and
  // duplicate keys with the nearest valid name); false when it is not a mapping.
  bool expect_map(const YAML::Node& node, const std::string& field,
                  std::span<const std::string_view> allowed);
  bool expect_seq(const YAML::Node& node, const std::string& field);

  std::optional<std::string> string(const YAML::Node& node, const std::string& field);
  std::optional<bool> boolean(const YAML::Node& node, const std::string& field);
  std::optional<int> integer(const YAML::Node& node, const std::string& field);
  std::optional<std::vector<std::string>> strings(const YAML::Node& node, const std::string& field);
  // The value of one of `values` (case-insensitive), reported as an enum error otherwise.
  std::optional<std::string> choice(const YAML::Node& node, const std::string& field,
                                    std::span<const std::string_view> values);

  // Counts a visited node; false once the document has used up its budget (alias bombs).
  bool spend();
  [[nodiscard]] size_t error_count() const { return errors_; }
  [[nodiscard]] const std::string& file() const { return file_; }

private:
  void add(Diagnostic::Level level, const YAML::Node& at, const std::string& field,
           std::string reason, std::string hint);

  std::string file_;
  size_t budget_;
  bool budget_reported_ = false;
  size_t errors_ = 0;
  std::vector<Diagnostic>& out_;
  YAML::Mark last_mark_;
};

// "a, b, c" for hints.
std::string list_of(std::span<const std::string_view> values);

} // namespace corral::policy
