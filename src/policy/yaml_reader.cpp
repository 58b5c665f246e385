#include "policy/yaml_reader.h"

#include <charconv>
#include <set>

#include "core/strings.h"

namespace corral::policy {
namespace {

constexpr size_t kMaxDiagnostics = 200; // beyond this, more of the same helps nobody

std::string kind_name(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Map: return "a mapping";
  case YAML::NodeType::Sequence: return "a list";
  case YAML::NodeType::Scalar: return "a scalar";
  case YAML::NodeType::Null: return "null";
  case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

} // namespace

std::string list_of(std::span<const std::string_view> values) {
  std::string out;
  for (const auto v : values) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

void YamlReader::add(Diagnostic::Level level, const YAML::Node& at, const std::string& field,
                     std::string reason, std::string hint) {
  if (level == Diagnostic::Level::Error) ++errors_;
  if (out_.size() >= kMaxDiagnostics) return;
  YAML::Mark mark = at.IsDefined() ? at.Mark() : last_mark_;
  if (mark.is_null()) mark = last_mark_;
  out_.push_back(Diagnostic{level, file_, mark.is_null() ? 0 : mark.line + 1,
                            mark.is_null() ? 0 : mark.column + 1, field, std::move(reason),
                            std::move(hint)});
}

void YamlReader::error(const YAML::Node& at, const std::string& field, std::string reason,
                       std::string hint) {
  add(Diagnostic::Level::Error, at, field, std::move(reason), std::move(hint));
}

void YamlReader::warning(const YAML::Node& at, const std::string& field, std::string reason,
                         std::string hint) {
  add(Diagnostic::Level::Warning, at, field, std::move(reason), std::move(hint));
}

bool YamlReader::spend() {
  if (budget_ > 0) {
    --budget_;
    return true;
  }
  if (!budget_reported_) {
    budget_reported_ = true;
    error(YAML::Node(), "", "document expands to too many nodes",
          "aliases (*name) that repeat large parts of a document are not accepted");
  }
  return false;
}

bool YamlReader::expect_map(const YAML::Node& node, const std::string& field,
                            std::span<const std::string_view> allowed) {
  if (!spend()) return false;
  if (node.IsDefined() && !node.Mark().is_null()) last_mark_ = node.Mark();
  if (!node.IsMap()) {
    error(node, field, "expected a mapping, found " + kind_name(node));
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!spend()) return false;
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const std::string path = field.empty() ? key : field + "." + key;
    if (!kv.first.IsScalar()) {
      error(kv.first, field, "field names must be plain strings");
    } else if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const std::string near = nearest(key, allowed);
      error(kv.first, path, "unknown field",
            near.empty() ? "valid fields here: " + list_of(allowed)
                         : "did you mean '" + near + "'?");
    } else if (!seen.insert(key).second) {
      error(kv.first, path, "duplicate field");
    }
  }
  return true;
}

bool YamlReader::expect_seq(const YAML::Node& node, const std::string& field) {
  if (!spend()) return false;
  if (node.IsSequence()) return true;
  error(node, field, "expected a list, found " + kind_name(node));
  return false;
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, const std::string& field) {
  if (!spend()) return std::nullopt;
  if (node.IsScalar()) return node.Scalar();
  error(node, field, "expected a string, found " + kind_name(node));
  return std::nullopt;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, const std::string& field) {
  const auto s = string(node, field);
  if (!s) return std::nullopt;
  const std::string v = to_lower(*s);
  if (v == "true") return true;
  if (v == "false") return false;
  error(node, field, "expected true or false, found '" + *s + "'");
  return std::nullopt;
}

std::optional<int> YamlReader::integer(const YAML::Node& node, const std::string& field) {
  const auto s = string(node, field);
  if (!s) return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), value);
  if (ec == std::errc() && end == s->data() + s->size()) return value;
  error(node, field, "expected an integer, found '" + *s + "'");
  return std::nullopt;
}

std::optional<std::vector<std::string>> YamlReader::strings(const YAML::Node& node,
                                                            const std::string& field) {
  if (!expect_seq(node, field)) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    auto s = string(node[i], field + "[" + std::to_string(i) + "]");
    if (s) out.push_back(std::move(*s));
    ok = ok && s.has_value();
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> YamlReader::choice(const YAML::Node& node, const std::string& field,
                                              std::span<const std::string_view> values) {
  const auto s = string(node, field);
  if (!s) return std::nullopt;
  const std::string lower = to_lower(*s);
  for (const auto v : values) {
    if (to_lower(v) == lower) return std::string(v);
  }
  error(node, field, "invalid value '" + *s + "'", "valid values: " + list_of(values));
  return std::nullopt;
}

} // namespace corral::policy
