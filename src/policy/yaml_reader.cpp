#include "policy/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/strings.h"

namespace corral::policy {
namespace {

constexpr size_t kMaxDiagnostics = 200; // beyond this, more of the same helps nobody
constexpr size_t kMaxQuoted = 60;

std::string kind_name(const YamlNode& node) {
  switch (node.type()) {
  case YamlType::Map: return "a mapping";
  case YamlType::Sequence: return "a list";
  case YamlType::Scalar: return "a scalar";
  case YamlType::Null: return "null";
  case YamlType::Undefined: break;
  }
  return "nothing";
}

bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

std::string hex_byte(unsigned char c) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[c >> 4] + kDigits[c & 15];
}

// The length of the UTF-8 sequence at `s[i]` and its code point, or 0 when malformed
// (overlong forms, surrogates and values past U+10FFFF are malformed: RFC 3629).
size_t decode_utf8(std::string_view s, size_t i, char32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80;
    hi = c == 0xED ? 0x9F : 0xBF;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : !is_continuation(b)) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return len;
}

// YAML 1.2 c-printable (spec 5.1), as go-yaml (KubeArmor's parser) enforces it.
bool is_printable(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x85) return true;
  if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return false;
  return cp != 0xFFFE && cp != 0xFFFF;
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

std::string quote(std::string_view value) {
  size_t cut = value.size();
  if (cut > kMaxQuoted) {
    cut = kMaxQuoted;
    while (cut > 0 && is_continuation(static_cast<unsigned char>(value[cut]))) --cut;
  }
  std::string out = "'";
  for (const char ch : value.substr(0, cut)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x" + hex_byte(c).substr(2);
    } else {
      out += ch;
    }
  }
  if (cut < value.size()) out += "...";
  return out + "'";
}

std::string display_key(std::string_view key) {
  const bool plain = key.size() <= kMaxQuoted && std::none_of(key.begin(), key.end(), [](char c) {
                       const auto u = static_cast<unsigned char>(c);
                       return u < 0x20 || u == 0x7F || u == '.' || u == '\'';
                     });
  return plain && !key.empty() ? std::string(key) : quote(key);
}

std::optional<std::pair<size_t, std::string>> find_invalid_text(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const size_t len = decode_utf8(text, i, cp);
    if (len == 0) {
      return std::pair{i, "invalid UTF-8 byte " + hex_byte(static_cast<unsigned char>(text[i]))};
    }
    if (!is_printable(cp)) {
      std::string code(4, '0');
      std::to_chars(code.data() + (cp < 0x10 ? 3 : cp < 0x100 ? 2 : 0), code.data() + 4, +cp, 16);
      for (auto& c : code) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return std::pair{i, "control character U+" + code + " is not allowed in YAML"};
    }
    i += len;
  }
  return std::nullopt;
}

YamlReader::YamlReader(std::string file, std::string_view text, size_t node_budget,
                       std::vector<Diagnostic>& out)
    : file_(std::move(file)), shared_file_(file_), text_(text), budget_(node_budget), out_(out) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") bom_ = 3;
}

size_t YamlReader::offset_of(const YAML::Mark& mark) const {
  if (mark.is_null() || mark.pos < 0) return std::string_view::npos;
  const size_t offset = static_cast<size_t>(mark.pos) + bom_;
  return offset <= text_.size() ? offset : std::string_view::npos;
}

size_t YamlReader::line_index(size_t offset) {
  if (line_starts_.empty()) {
    line_starts_.push_back(bom_);
    for (size_t i = 0; i < text_.size(); ++i) {
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }
  return static_cast<size_t>(std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) -
                             line_starts_.begin() - 1);
}

// yaml-cpp counts columns in bytes; editors count characters, and so do we.
std::pair<int, int> YamlReader::locate(const YAML::Mark& mark) {
  if (mark.is_null()) return {0, 0};
  if (mark_positions_) return {mark.line + 1, mark.column + 1};
  const size_t offset = offset_of(mark);
  if (offset == std::string_view::npos) return {mark.line + 1, mark.column + 1};
  const size_t line = line_index(offset);
  int column = 1;
  for (size_t i = line_starts_[line]; i < offset; ++i) {
    if (!is_continuation(static_cast<unsigned char>(text_[i]))) ++column;
  }
  return {static_cast<int>(line) + 1, column};
}

// The indicator (`:` or `-`) before an empty value at `mark`: the last character before it
// that is neither white space nor part of a comment.
YAML::Mark YamlReader::before_empty(const YAML::Mark& mark) {
  size_t i = offset_of(mark);
  if (i == std::string_view::npos) return mark;
  const std::string_view rest = text_.substr(i);
  if (rest.starts_with("~") || to_lower(rest.substr(0, 4)) == "null") return mark; // explicit
  while (i > bom_) {
    const char c = text_[i - 1];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      --i;
      continue;
    }
    const size_t line = line_index(i - 1);
    const size_t start = line_starts_[line];
    size_t comment = i;
    for (size_t k = start; k < i; ++k) {
      if (text_[k] == '#' && (k == start || text_[k - 1] == ' ' || text_[k - 1] == '\t')) {
        comment = k;
        break;
      }
    }
    if (comment < i) {
      i = comment;
      continue;
    }
    YAML::Mark at; // only the offset matters to locate()
    at.pos = static_cast<int>(i - 1 - bom_);
    return at;
  }
  return mark;
}

YAML::Mark YamlReader::mark_of(const YamlNode& node) {
  if (!node.defined() || node.mark().is_null()) return last_mark_;
  const YAML::Mark mark = node.mark();
  if (!node.is_null()) return mark;
  const auto [first, last] = empty_values_.equal_range(mark.pos);
  for (auto it = first; it != last; ++it) {
    if (it->second.first.is(node)) return it->second.second;
  }
  return before_empty(mark);
}

std::pair<int, int> YamlReader::position(const YamlNode& node) {
  return locate(mark_of(node));
}

void YamlReader::add(Diagnostic::Level level, const YAML::Mark& mark, const std::string& field,
                     std::string reason, std::string hint) {
  if (level == Diagnostic::Level::Error) ++errors_;
  if (out_.size() >= kMaxDiagnostics) return;
  const auto [line, column] = locate(mark);
  out_.push_back(Diagnostic{level, file_, line, column, field, std::move(reason), std::move(hint)});
}

void YamlReader::error(const YamlNode& at, const std::string& field, std::string reason,
                       std::string hint) {
  add(Diagnostic::Level::Error, mark_of(at), field, std::move(reason), std::move(hint));
}

void YamlReader::warning(const YamlNode& at, const std::string& field, std::string reason,
                         std::string hint) {
  add(Diagnostic::Level::Warning, mark_of(at), field, std::move(reason), std::move(hint));
}

void YamlReader::error_at(const YAML::Mark& mark, std::string reason, std::string hint) {
  add(Diagnostic::Level::Error, mark, "", std::move(reason), std::move(hint));
}

void YamlReader::error_at(size_t offset, std::string reason, std::string hint) {
  YAML::Mark at; // only the offset matters to locate()
  at.pos = static_cast<int>(offset >= bom_ ? offset - bom_ : 0);
  add(Diagnostic::Level::Error, at, "", std::move(reason), std::move(hint));
}

bool YamlReader::spend(size_t units) {
  if (budget_ >= units) {
    budget_ -= units;
    return true;
  }
  budget_ = 0;
  if (!budget_reported_) {
    budget_reported_ = true;
    add(Diagnostic::Level::Error, last_mark_, "", "document expands to too much data",
        "aliases (*name) that repeat large parts of a document, or long spec-level tags and "
        "messages inherited by many rules, are not accepted");
  }
  return false;
}

bool YamlReader::expect_map(const YamlNode& node, const std::string& field,
                            std::span<const std::string_view> allowed) {
  if (!spend()) return false;
  if (node.defined() && !node.mark().is_null()) last_mark_ = mark_of(node);
  if (!node.is_map()) {
    std::string hint;
    if (field.empty()) {
      hint = "a policy starts with 'apiVersion: security.kubearmor.com/v1'";
    } else if (node.is_scalar() && node.scalar().find(':') != std::string::npos) {
      hint = "put a space after ':' to write a field (key: value)";
    }
    error(node, field, "expected a mapping, found " + kind_name(node), hint);
    return false;
  }
  // Maps have a few keys: a list is faster than a set, and the field path is built only for
  // a diagnostic (a policy has one map per rule).
  std::vector<std::string_view> seen;
  for (size_t i = 0; i < node.size(); ++i) {
    if (!spend()) return false;
    const YamlNode k = node.key(i);
    const YamlNode v = node.value(i);
    if (v.is_null() && !v.mark().is_null()) {
      empty_values_.emplace(v.mark().pos, std::pair{v, k.mark()});
    }
    const std::string_view key = k.scalar();
    const auto path = [&] {
      return field.empty() ? display_key(key) : field + "." + display_key(key);
    };
    if (!k.is_scalar()) {
      error(k, field, "field names must be plain strings");
    } else if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const std::string near = nearest(key, allowed);
      error(k, path(), "unknown field",
            near.empty() ? "valid fields here: " + list_of(allowed)
                         : "did you mean '" + near + "'?");
    } else if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      error(k, path(), "duplicate field");
    } else {
      seen.push_back(key);
    }
  }
  return true;
}

bool YamlReader::expect_seq(const YamlNode& node, const std::string& field) {
  if (!spend()) return false;
  if (node.is_sequence()) return true;
  error(node, field, "expected a list, found " + kind_name(node));
  return false;
}

std::optional<std::string> YamlReader::string(const YamlNode& node, const std::string& field) {
  if (!spend()) return std::nullopt;
  if (node.is_scalar()) return std::string(node.scalar());
  error(node, field, "expected a string, found " + kind_name(node));
  return std::nullopt;
}

std::optional<bool> YamlReader::boolean(const YamlNode& node, const std::string& field) {
  const auto s = string(node, field);
  if (!s) return std::nullopt;
  const std::string v = to_lower(*s);
  if (v == "true") return true;
  if (v == "false") return false;
  error(node, field, "expected true or false, found " + quote(*s));
  return std::nullopt;
}

std::optional<int> YamlReader::integer(const YamlNode& node, const std::string& field) {
  const auto s = string(node, field);
  if (!s) return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), value);
  if (ec == std::errc() && end == s->data() + s->size()) return value;
  error(node, field, "expected an integer, found " + quote(*s));
  return std::nullopt;
}

std::optional<std::vector<std::string>> YamlReader::strings(const YamlNode& node,
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

std::optional<std::string> YamlReader::choice(const YamlNode& node, const std::string& field,
                                              std::span<const std::string_view> values) {
  const auto s = string(node, field);
  if (!s) return std::nullopt;
  const std::string lower = to_lower(*s);
  for (const auto v : values) {
    if (to_lower(v) == lower) return std::string(v);
  }
  error(node, field, "invalid value " + quote(*s), "valid values: " + list_of(values));
  return std::nullopt;
}

} // namespace corral::policy
