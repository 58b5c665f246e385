#include "policy/yaml_block.h"

#include <algorithm>
#include <optional>
#include <string>

namespace corral::policy {
namespace {

constexpr int kMaxDepth = 500; // yaml-cpp refuses 2000 levels; policies need a few
constexpr std::string_view kIndicators = "-?:,[]{}#&*!|>'\"%@`";

// Gives up on the input: the caller reads it with yaml-cpp.
struct Unsupported {};

class BlockReader {
public:
  BlockReader(std::string_view text, YamlTree& tree) : text_(text), out_(tree) {}

  void run() {
    for (char c : text_) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x80 || (u < 0x20 && c != '\n') || u == 0x7F) throw Unsupported{};
    }
    bool explicit_start = false;
    while (true) {
      skip_blank_lines();
      if (pos_ >= text_.size()) break;
      if (document_marker()) {
        // `---` begins a document; one without content is a null one.
        if (explicit_start) empty_document();
        explicit_start = true;
        next_line();
        continue;
      }
      const size_t indent = indent_at(pos_);
      document(indent);
      explicit_start = false;
    }
    if (explicit_start) empty_document();
  }

private:
  // --- positions ---
  [[nodiscard]] YAML::Mark mark_at(size_t pos) const {
    YAML::Mark m;
    m.pos = static_cast<int>(pos);
    m.line = static_cast<int>(line_);
    m.column = static_cast<int>(pos - line_start_);
    return m;
  }
  [[nodiscard]] char at(size_t pos) const { return pos < text_.size() ? text_[pos] : '\n'; }
  [[nodiscard]] size_t line_end(size_t pos) const {
    const size_t e = text_.find('\n', pos);
    return e == std::string_view::npos ? text_.size() : e;
  }
  [[nodiscard]] size_t indent_at(size_t line_start) const {
    size_t i = line_start;
    while (i < text_.size() && text_[i] == ' ') ++i;
    return i - line_start;
  }
  void next_line() {
    const size_t e = line_end(pos_);
    pos_ = e < text_.size() ? e + 1 : text_.size();
    line_start_ = pos_;
    ++line_;
  }
  // Blank and comment-only lines; pos_ is then at the start of a line with content, or at
  // the end.
  void skip_blank_lines() {
    while (pos_ < text_.size()) {
      const size_t c = pos_ + indent_at(pos_);
      if (c < text_.size() && text_[c] != '\n' && text_[c] != '#') return;
      next_line();
    }
  }
  [[nodiscard]] bool document_marker() const {
    if (text_.substr(pos_, 3) == "...") throw Unsupported{};
    if (text_.substr(pos_, 3) != "---") return false;
    const char after = at(pos_ + 3);
    if (after != '\n' && after != ' ') return false;
    // Only `---` and a comment: content on the marker's line is not read here.
    const size_t c = rest_start(pos_ + 3);
    if (at(c) != '\n') throw Unsupported{};
    return true;
  }
  // The first character after spaces from `pos` that is not a comment's ('\n' at the end).
  [[nodiscard]] size_t rest_start(size_t pos) const {
    while (at(pos) == ' ') ++pos;
    if (at(pos) == '#') return line_end(pos);
    return pos;
  }
  // The next content line's indentation, or -1 at the end of the document.
  long peek_indent() {
    skip_blank_lines();
    if (pos_ >= text_.size()) return -1;
    if (pos_ == line_start_ && text_.substr(pos_, 3) == "---" &&
        (at(pos_ + 3) == '\n' || at(pos_ + 3) == ' '))
      return -1;
    if (text_.substr(pos_, 3) == "...") throw Unsupported{};
    return static_cast<long>(indent_at(pos_));
  }
  [[nodiscard]] bool entry_at(size_t pos) const {
    return at(pos) == '-' && (at(pos + 1) == ' ' || at(pos + 1) == '\n');
  }

  // --- structure ---
  void document(size_t indent) {
    out_.OnDocumentStart(mark_at(pos_));
    block_node(indent, 0);
    if (peek_indent() >= 0) throw Unsupported{}; // content less indented than the root
    out_.OnDocumentEnd();
  }
  void empty_document() {
    out_.OnDocumentStart(mark_at(pos_));
    empty_value();
    out_.OnDocumentEnd();
  }

  // A block sequence or mapping whose first line (pos_ at its start) is indented `indent`;
  // below a key or entry at `parent` (a node's own indentation at the root), also a value
  // alone on its line ("action:" and "Allow" below it).
  void block_node(size_t indent, int depth, std::optional<size_t> parent = std::nullopt) {
    if (depth > kMaxDepth) throw Unsupported{};
    const size_t c = line_start_ + indent;
    if (entry_at(c)) {
      sequence(indent, depth);
    } else if (key_end(c) != std::string_view::npos || !parent) {
      mapping(c, depth);
    } else {
      inline_value(c, *parent);
    }
  }

  void sequence(size_t indent, int depth) {
    out_.OnSequenceStart(mark_at(line_start_ + indent), "?", 0, YAML::EmitterStyle::Block);
    while (true) {
      const size_t dash = line_start_ + indent;
      const size_t c = rest_start(dash + 1);
      if (at(c) == '\n') { // the entry's node is on the lines below
        next_line();
        const long next = peek_indent();
        if (next > static_cast<long>(indent)) {
          block_node(static_cast<size_t>(next), depth + 1, indent);
        } else {
          empty_value();
        }
      } else if (entry_at(c)) {
        throw Unsupported{}; // "- - a"
      } else if (key_end(c) != std::string_view::npos) {
        mapping(c, depth + 1); // "- key: value": a mapping at the key's column
      } else {
        inline_value(c, indent);
      }
      const long next = peek_indent();
      if (next != static_cast<long>(indent) || !entry_at(pos_ + indent)) break;
    }
    out_.OnSequenceEnd();
  }

  // A mapping whose first key starts at `first` (on the current line); its keys are all at
  // that column.
  void mapping(size_t first, int depth) {
    const size_t indent = first - line_start_;
    out_.OnMapStart(mark_at(first), "?", 0, YAML::EmitterStyle::Block);
    size_t k = first;
    while (true) {
      const size_t colon = key_end(k);
      if (colon == std::string_view::npos) throw Unsupported{};
      key(k, colon);
      const size_t c = rest_start(colon + 1);
      if (at(c) == '\n') {
        next_line();
        const long next = peek_indent();
        if (next > static_cast<long>(indent)) {
          block_node(static_cast<size_t>(next), depth + 1, indent);
        } else if (next == static_cast<long>(indent) && entry_at(pos_ + indent)) {
          sequence(indent, depth + 1); // a sequence at the key's own indentation
        } else {
          empty_value();
        }
      } else {
        inline_value(c, indent);
      }
      const long next = peek_indent();
      if (next < static_cast<long>(indent)) break;
      if (next > static_cast<long>(indent)) throw Unsupported{};
      // "- " at a mapping's column after a complete value (an indentless sequence was read
      // as that value): not YAML.
      if (entry_at(pos_ + indent)) throw Unsupported{};
      k = pos_ + indent;
    }
    out_.OnMapEnd();
  }

  // A plain key from `k` up to its ':' (followed by a space or the end of the line); npos
  // when the line is not `key: ...` in the subset.
  [[nodiscard]] size_t key_end(size_t k) const {
    if (kIndicators.find(at(k)) != std::string_view::npos || at(k) == '\n') {
      return std::string_view::npos;
    }
    const size_t end = line_end(k);
    for (size_t i = k; i < end; ++i) {
      if (text_[i] == '#' && text_[i - 1] == ' ') return std::string_view::npos;
      if (text_[i] == ':' && (at(i + 1) == ' ' || at(i + 1) == '\n')) return i;
    }
    return std::string_view::npos;
  }
  void key(size_t k, size_t colon) {
    size_t e = colon;
    while (e > k && text_[e - 1] == ' ') --e;
    plain(k, e);
  }

  // A value on the rest of the line at `c` (a scalar or a flow sequence), for a node whose
  // parent is at `indent`; the next content line must not continue it.
  void inline_value(size_t c, size_t indent) {
    const char first = at(c);
    size_t after = 0;
    if (first == '\'' || first == '"') {
      after = quoted(c);
    } else if (first == '[') {
      after = flow_sequence(c);
    } else if (kIndicators.find(first) != std::string_view::npos) {
      throw Unsupported{};
    } else {
      const size_t end = line_end(c);
      size_t e = c;
      for (size_t i = c; i < end; ++i) {
        if (text_[i] == '#' && text_[i - 1] == ' ') break;
        if (text_[i] == ':' && (at(i + 1) == ' ' || at(i + 1) == '\n')) throw Unsupported{};
        if (text_[i] != ' ') e = i + 1;
      }
      plain(c, e);
      after = e;
    }
    if (at(rest_start(after)) != '\n') throw Unsupported{};
    next_line();
    // A more indented line after a scalar would continue it (a multi-line plain scalar).
    if (peek_indent() > static_cast<long>(indent)) throw Unsupported{};
  }

  // A key or entry without a node: yaml-cpp marks it at the next token.
  void empty_value() { out_.OnNull(mark_at(std::min(pos_ + indent_at(pos_), text_.size())), 0); }

  // yaml-cpp's null: a plain scalar ~, null, Null or NULL.
  void plain(size_t b, size_t e) {
    const std::string_view v = text_.substr(b, e - b);
    if (v == "~" || v == "null" || v == "Null" || v == "NULL") {
      out_.OnNull(mark_at(b), 0);
    } else {
      out_.OnScalar(mark_at(b), "?", 0, std::string(v));
    }
  }

  // A one-line quoted scalar at `q`; returns the position after its closing quote.
  size_t quoted(size_t q) {
    const char quote = text_[q];
    const size_t end = line_end(q);
    std::string value;
    for (size_t i = q + 1; i < end; ++i) {
      const char ch = text_[i];
      if (quote == '"' && ch == '\\') throw Unsupported{};
      if (ch != quote) {
        value += ch;
        continue;
      }
      if (quote == '\'' && at(i + 1) == '\'') {
        value += '\'';
        ++i;
        continue;
      }
      out_.OnScalar(mark_at(q), "!", 0, value);
      return i + 1;
    }
    throw Unsupported{}; // continues on the next line, or never closes
  }

  // `[a, 'b', "c"]` on one line; returns the position after ']'.
  size_t flow_sequence(size_t open) {
    out_.OnSequenceStart(mark_at(open), "?", 0, YAML::EmitterStyle::Flow);
    size_t i = open + 1;
    while (at(i) == ' ') ++i;
    if (at(i) == ']') {
      out_.OnSequenceEnd();
      return i + 1;
    }
    while (true) {
      const char first = at(i);
      if (first == '\'' || first == '"') {
        i = quoted(i);
      } else if (kIndicators.find(first) != std::string_view::npos || first == '\n' ||
                 first == ' ') {
        throw Unsupported{};
      } else {
        size_t e = i;
        size_t j = i;
        for (; at(j) != ',' && at(j) != ']' && at(j) != '\n'; ++j) {
          const char ch = text_[j];
          if (ch == '[' || ch == '{' || ch == '}' || ch == '#' || ch == ':') throw Unsupported{};
          if (ch != ' ') e = j + 1;
        }
        plain(i, e);
        i = j;
      }
      while (at(i) == ' ') ++i;
      if (at(i) == ']') break;
      if (at(i) != ',') throw Unsupported{};
      ++i;
      while (at(i) == ' ') ++i;
      if (at(i) == ']') throw Unsupported{}; // a trailing comma
    }
    out_.OnSequenceEnd();
    return i + 1;
  }

  std::string_view text_;
  YamlTree::Builder out_;
  size_t pos_ = 0;
  size_t line_start_ = 0;
  size_t line_ = 0;
};

} // namespace

bool read_block_yaml(std::string_view text, YamlTree& tree) {
  try {
    BlockReader(text, tree).run();
    return true;
  } catch (const Unsupported&) {
    return false;
  }
}

} // namespace corral::policy
