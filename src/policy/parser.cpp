#include "policy/parser.h"

#include <algorithm>
#include <array>
#include <istream>
#include <optional>
#include <streambuf>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include "policy/rules_parser.h"
#include "policy/yaml_block.h"
#include "policy/yaml_reader.h"
#include "policy/yaml_tree.h"

namespace corral::policy {
namespace {

constexpr std::string_view kApiVersion = "security.kubearmor.com/v1";
constexpr std::array<std::string_view, 3> kKinds = {"KubeArmorPolicy", "KubeArmorClusterPolicy",
                                                    "KubeArmorHostPolicy"};
constexpr std::array<std::string_view, 5> kTopFields = {"apiVersion", "kind", "metadata", "spec",
                                                        "status"};
constexpr std::array<std::string_view, 9> kMetadataFields = {
    "name",         "namespace",  "labels",          "annotations",
    "uid",          "generation", "resourceVersion", "creationTimestamp",
    "managedFields"};
constexpr std::array<std::string_view, 2> kSelectorFields = {"matchLabels", "matchExpressions"};
constexpr std::array<std::string_view, 1> kNodeSelectorFields = {"matchLabels"};
constexpr std::array<std::string_view, 3> kExpressionFields = {"key", "operator", "values"};
constexpr std::array<std::string_view, 2> kOperators = {"In", "NotIn"};

class DocumentParser {
public:
  DocumentParser(YamlReader& r, const YamlNode& doc) : r_(r), doc_(doc) {}

  std::optional<Policy> parse() {
    const size_t errors_before = r_.error_count();
    if (!r_.expect_map(doc_, "", kTopFields)) return std::nullopt;
    Policy p;
    const auto [line, column] = r_.position(doc_);
    p.origin = Origin{r_.shared_file(), line, column, ""};
    parse_header(p);
    parse_metadata(p);
    const YamlNode& spec = doc_["spec"];
    if (!spec.defined()) {
      r_.error(doc_, "spec", "missing required field");
    } else {
      parse_spec(p, spec);
    }
    if (r_.error_count() != errors_before) return std::nullopt;
    return p;
  }

private:
  void parse_header(Policy& p) {
    const YamlNode& api = doc_["apiVersion"];
    if (!api.defined()) {
      r_.error(doc_, "apiVersion", "missing required field", std::string(kApiVersion));
    } else if (auto v = r_.string(api, "apiVersion"); v && *v != kApiVersion) {
      r_.error(api, "apiVersion", "unsupported apiVersion " + quote(*v),
               "use " + std::string(kApiVersion));
    }
    const YamlNode& kind = doc_["kind"];
    if (!kind.defined()) {
      r_.error(doc_, "kind", "missing required field", "one of " + list_of(kKinds));
      return;
    }
    const auto k = r_.string(kind, "kind");
    if (!k) return;
    for (size_t i = 0; i < kKinds.size(); ++i) {
      if (*k == kKinds[i]) {
        p.kind = static_cast<Kind>(i);
        return;
      }
    }
    r_.error(kind, "kind", "unknown kind " + quote(*k), "one of " + list_of(kKinds));
  }

  void parse_metadata(Policy& p) {
    const YamlNode& md = doc_["metadata"];
    if (!md.defined()) {
      r_.error(doc_, "metadata", "missing required field", "metadata.name names the policy");
      return;
    }
    if (!r_.expect_map(md, "metadata", kMetadataFields)) return;
    if (const YamlNode& name = md["name"]; !name.defined()) {
      r_.error(md, "metadata.name", "missing required field");
    } else if (auto n = r_.string(name, "metadata.name")) {
      if (n->empty()) r_.error(name, "metadata.name", "must not be empty");
      p.name = *n;
    }
    p.namespace_name = "default";
    if (const YamlNode& ns = md["namespace"]; ns.defined()) {
      if (auto n = r_.string(ns, "metadata.namespace")) {
        if (p.kind != Kind::Policy) {
          r_.warning(ns, "metadata.namespace", "ignored: this kind is not namespaced");
        } else if (n->empty()) {
          r_.error(ns, "metadata.namespace", "must not be empty");
        } else {
          p.namespace_name = *n;
        }
      }
    }
    if (p.kind != Kind::Policy) p.namespace_name.clear();
    // An annotation given twice: YAML tools disagree on which wins, so a reader could take a
    // policy for locked (or in dry run) that is not.
    if (const YamlNode& all = md["annotations"]; all.is_map()) {
      std::vector<std::string_view> seen;
      for (size_t i = 0; i < all.size(); ++i) {
        const YamlNode k = all.key(i);
        if (std::find(seen.begin(), seen.end(), k.scalar()) != seen.end()) {
          r_.error(k, "metadata.annotations." + std::string(k.scalar()), "duplicate annotation",
                   "give each annotation once");
        }
        seen.push_back(k.scalar());
      }
    }
    const YamlNode& mode = md["annotations"]["kubearmor-policy"];
    if (mode.defined()) {
      if (auto v = r_.string(mode, "metadata.annotations.kubearmor-policy")) {
        if (*v == "audited") {
          p.dry_run = true;
        } else if (*v != "enabled") {
          r_.error(mode, "metadata.annotations.kubearmor-policy", "invalid value \"" + *v + "\"",
                   "audited (a dry run: the policy denies nothing, its denials are alerted as "
                   "\"Audit (Block)\") or enabled");
        }
      }
    }
    const YamlNode& lock = md["annotations"][kLockAnnotation];
    if (lock.defined()) {
      if (auto v = r_.string(lock, std::string("metadata.annotations.") + kLockAnnotation)) {
        if (*v == "true") {
          p.locked = true;
        } else if (*v != "false") {
          r_.error(lock, std::string("metadata.annotations.") + kLockAnnotation,
                   "invalid value \"" + *v + "\"",
                   "\"true\" (other policies can only narrow what the selected workloads may do) "
                   "or \"false\"");
        }
      }
    }
  }

  void parse_spec(Policy& p, const YamlNode& spec) {
    if (!r_.expect_map(spec, "spec", spec_fields())) return;
    const bool host = p.kind == Kind::HostPolicy;
    const char* wanted = host ? "nodeSelector" : "selector";
    const char* other = host ? "selector" : "nodeSelector";
    if (spec[other].defined()) {
      r_.error(spec[other], std::string("spec.") + other,
               std::string("not valid for ") + std::string(to_string(p.kind)),
               std::string("use spec.") + wanted);
    } else if (!spec[wanted].defined()) {
      r_.error(spec, std::string("spec.") + wanted, "missing required field");
    } else {
      parse_selector(p, spec[wanted], std::string("spec.") + wanted);
    }
    parse_rules(r_, spec, p);
  }

  static std::span<const std::string_view> spec_fields() {
    static constexpr std::array<std::string_view, 13> kFields = {
        "selector", "nodeSelector", "severity",     "tags",     "message",  "action", "process",
        "file",     "network",      "capabilities", "syscalls", "apparmor", "selinux"};
    return kFields;
  }

  void parse_selector(Policy& p, const YamlNode& sel, const std::string& field) {
    const bool host = p.kind == Kind::HostPolicy;
    if (!r_.expect_map(sel, field,
                       host ? std::span<const std::string_view>(kNodeSelectorFields)
                            : std::span<const std::string_view>(kSelectorFields)))
      return;
    if (const YamlNode& ml = sel["matchLabels"]; ml.defined() && !ml.is_null()) {
      parse_labels(ml, field + ".matchLabels", p.selector.match_labels);
    }
    const YamlNode& me = sel["matchExpressions"];
    if (!me.defined() || me.is_null() || !r_.expect_seq(me, field + ".matchExpressions")) return;
    for (size_t i = 0; i < me.size(); ++i) {
      parse_expression(p, me[i], field + ".matchExpressions[" + std::to_string(i) + "]");
    }
  }

  void parse_labels(const YamlNode& ml, const std::string& field, Labels& out) {
    if (!r_.spend()) return;
    if (!ml.is_map()) {
      r_.error(ml, field, "expected a mapping of label: value", "e.g. app: nginx");
      return;
    }
    for (size_t i = 0; i < ml.size(); ++i) {
      const auto key = r_.string(ml.key(i), field);
      if (!key) continue;
      if (auto value = r_.string(ml.value(i), field + "." + display_key(*key))) out[*key] = *value;
    }
  }

  void parse_expression(Policy& p, const YamlNode& e, const std::string& field) {
    if (!r_.expect_map(e, field, kExpressionFields)) return;
    Expression x;
    const std::array<std::string_view, 2> keys_ns = {"label", "namespace"};
    const std::array<std::string_view, 1> keys_label = {"label"};
    const auto keys = p.kind == Kind::ClusterPolicy ? std::span<const std::string_view>(keys_ns)
                                                    : std::span<const std::string_view>(keys_label);
    const YamlNode& key = e["key"];
    const YamlNode& op = e["operator"];
    const YamlNode& values = e["values"];
    if (!key.defined()) r_.error(e, field + ".key", "missing required field", list_of(keys));
    if (!op.defined()) r_.error(e, field + ".operator", "missing required field", "In or NotIn");
    if (!values.defined()) r_.error(e, field + ".values", "missing required field");
    if (key.defined()) x.key = r_.choice(key, field + ".key", keys).value_or("");
    if (op.defined()) x.in = r_.choice(op, field + ".operator", kOperators).value_or("In") == "In";
    if (values.defined()) {
      x.values = r_.strings(values, field + ".values").value_or(std::vector<std::string>{});
      for (size_t i = 0; i < x.values.size(); ++i) {
        if (x.key == "label" && x.values[i].find('=') == std::string::npos) {
          r_.error(values[i], field + ".values[" + std::to_string(i) + "]",
                   "a label value must be key=value", "e.g. app=nginx");
        }
      }
    }
    p.selector.match_expressions.push_back(std::move(x));
  }

  YamlReader& r_;
  const YamlNode& doc_;
};

// The one pass over the parser's events: it builds the tree (yaml_tree.h), finds syntax
// errors and says where they are (yaml-cpp reports some at its read-ahead position, often
// the end of the input, rather than at the construct that caused them), and it stops input
// that yaml-cpp 0.7 cannot get past: on e.g. "- a\n," its parser returns an empty document
// without consuming a token, forever (jbeder/yaml-cpp#1040, fixed upstream after 0.8.0).
class SyntaxCheck : public YAML::EventHandler {
public:
  SyntaxCheck(const std::string& text, YamlReader& reader, YamlTree& tree)
      : text_(text), reader_(reader), builder_(tree) {}

  // False, with the error reported, when the text is not valid YAML.
  bool run() {
    try {
      ViewBuffer buffer(text_);
      std::istream in(&buffer);
      YAML::Parser parser(in);
      while (parser.HandleNextDocument(*this)) {
        if (stuck_) return report_stuck();
      }
      return true;
    } catch (const YAML::Exception& e) {
      report(e);
      return false;
    }
  }

  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck_ = documents_++ > 0 && mark.pos == document_.pos;
    document_ = mark;
    open_.clear();
    builder_.OnDocumentStart(mark);
  }
  void OnDocumentEnd() override { builder_.OnDocumentEnd(); }
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    last_ = mark;
    builder_.OnNull(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    last_ = mark;
    builder_.OnAlias(mark, anchor);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    last_ = mark;
    builder_.OnScalar(mark, tag, anchor, value);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value style) override {
    start(mark, style, true);
    builder_.OnSequenceStart(mark, tag, anchor, style);
  }
  void OnSequenceEnd() override {
    end();
    builder_.OnSequenceEnd();
  }
  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value style) override {
    start(mark, style, false);
    builder_.OnMapStart(mark, tag, anchor, style);
  }
  void OnMapEnd() override {
    end();
    builder_.OnMapEnd();
  }

private:
  struct Open {
    YAML::Mark mark;
    bool flow = false;
    bool sequence = false;
  };

  void start(const YAML::Mark& mark, YAML::EmitterStyle::value style, bool sequence) {
    last_ = mark;
    open_.push_back({mark, style == YAML::EmitterStyle::Flow, sequence});
  }
  void end() {
    if (!open_.empty()) open_.pop_back();
  }

  bool report_stuck() {
    const size_t bom = text_.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    const size_t at = static_cast<size_t>(document_.pos) + bom;
    const std::string token = at < text_.size() ? text_.substr(at, 1) : "";
    reader_.error_at(document_, "invalid YAML: unexpected " + quote(token),
                     token == "," ? "',' separates items only inside [...] or {...}" : "");
    return false;
  }

  void report(const YAML::Exception& e) {
    if (const auto* deep = dynamic_cast<const YAML::DeepRecursion*>(&e)) {
      reader_.error_at(last_.is_null() ? e.mark : last_,
                       "invalid YAML: nested too deeply (the parser's limit is " +
                           std::to_string(deep->depth()) + " levels of nodes)",
                       "a policy needs a few levels; look for unclosed '[' or '{'");
      return;
    }
    const Open* flow = nullptr;
    for (auto it = open_.rbegin(); it != open_.rend() && flow == nullptr; ++it) {
      if (it->flow) flow = &*it;
    }
    if (flow != nullptr &&
        (e.msg == YAML::ErrorMsg::END_OF_SEQ_FLOW || e.msg == YAML::ErrorMsg::END_OF_MAP_FLOW)) {
      reader_.error_at(flow->mark,
                       std::string("invalid YAML: this ") + (flow->sequence ? "'['" : "'{'") +
                           " is never closed (" + e.msg + ")",
                       std::string("close it with ") + (flow->sequence ? "']'" : "'}'"));
      return;
    }
    reader_.error_at(e.mark, "invalid YAML: " + e.msg, hint_for(e));
  }

  // Most block-structure errors come from indentation: a tab, or a line indented more or
  // less than its siblings.
  [[nodiscard]] std::string hint_for(const YAML::Exception& e) const {
    const size_t bom = text_.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    const size_t at = std::min(text_.size(), static_cast<size_t>(std::max(e.mark.pos, 0)) + bom);
    const size_t newline = at == 0 ? std::string::npos : text_.rfind('\n', at - 1);
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    const size_t indent_end = text_.find_first_not_of(" \t", line_start);
    if (text_.substr(line_start, indent_end - line_start).find('\t') != std::string::npos) {
      return "indent with spaces: YAML does not allow tabs in indentation";
    }
    if (e.msg == YAML::ErrorMsg::END_OF_MAP || e.msg == YAML::ErrorMsg::END_OF_SEQ ||
        e.msg == YAML::ErrorMsg::BLOCK_ENTRY) {
      return "check this line's indentation against the lines above it";
    }
    return "";
  }

  // The text as a stream without a copy (std::istringstream would copy it).
  struct ViewBuffer : std::streambuf {
    explicit ViewBuffer(const std::string& s) {
      char* p = const_cast<char*>(s.data()); // read only: get area
      setg(p, p, p + s.size());
    }
  };

  const std::string& text_;
  YamlReader& reader_;
  YamlTree::Builder builder_;
  size_t documents_ = 0;
  bool stuck_ = false;
  YAML::Mark document_;
  YAML::Mark last_ = YAML::Mark::null_mark();
  std::vector<Open> open_;
};

// The last node of the input in text order: the last entry of the last document, descended.
// Bounded, because aliases can make the tree cyclic.
YamlNode last_node(const std::vector<YamlNode>& docs) {
  YamlNode node = docs.back();
  for (int step = 0; step < 1000; ++step) {
    if (node.is_sequence() && node.size() > 0) {
      node = node[node.size() - 1];
    } else if (node.is_map() && node.size() > 0) {
      const size_t last = node.size() - 1;
      node = node.value(last).is_null() ? node.key(last) : node.value(last);
    } else {
      break;
    }
  }
  return node;
}

// yaml-cpp accepts a quoted scalar that is never closed, taking the rest of the input as its
// value; YAML (and go-yaml, KubeArmor's parser) reject it. Such a scalar runs to the end of
// the input, so only the last node can be one. Returns the offset of its opening quote.
std::optional<size_t> unclosed_quote(const std::vector<YamlNode>& docs, std::string_view text) {
  if (docs.empty()) return std::nullopt;
  const YamlNode node = last_node(docs);
  if (!node.is_scalar() || node.mark().is_null() || node.mark().pos < 0) return std::nullopt;
  size_t i = static_cast<size_t>(node.mark().pos) + (text.starts_with("\xEF\xBB\xBF") ? 3 : 0);
  // The node's mark is at its first property (`&anchor`, `!tag`), if any.
  for (int property = 0; property < 2 && i < text.size() && (text[i] == '&' || text[i] == '!');
       ++property) {
    i = text.find_first_of(" \t\r\n", i);
    i = i == std::string_view::npos ? text.size() : text.find_first_not_of(" \t\r\n", i);
  }
  if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return std::nullopt;
  const char quote = text[i];
  for (size_t k = i + 1; k < text.size(); ++k) {
    if (quote == '"' && text[k] == '\\') {
      ++k; // an escape: the next character is not the end
    } else if (text[k] == quote) {
      if (quote == '"' || k + 1 >= text.size() || text[k + 1] != '\'') return std::nullopt;
      ++k; // '' is a quote inside a single-quoted scalar
    }
  }
  return i;
}

// The whole input's documents in `tree`, or false with a diagnostic for what it cannot or
// should not parse.
bool load_yaml(const std::string& text, YamlReader& reader, YamlTree& tree) {
  if (const auto bad = find_invalid_text(text)) {
    reader.error_at(bad->first, "not YAML text: " + bad->second,
                    "policies are UTF-8 text; remove the character or save the file as UTF-8");
    return false;
  }
  if (!SyntaxCheck(text, reader, tree).run()) return false;
  if (const auto quote = unclosed_quote(tree.documents(), text)) {
    reader.error_at(*quote, "invalid YAML: quoted string without its closing quote",
                    std::string("end it with ") + text[*quote]);
    return false;
  }
  return true;
}

// The policies of the documents in `tree`, read from `input`.
void parse_documents(const std::string& input, const YamlTree& tree, YamlReader& reader,
                     ParseResult& result) {
  const auto& docs = tree.documents();
  // Each document's own text (from its first node to the next document's), which the agent
  // stores: YAML documents are independent (anchors do not cross them), so the slice parses
  // alone. Re-emitting the node instead would recurse forever on a cyclic alias.
  std::vector<size_t> starts;
  for (const auto& doc : docs) {
    if (!doc.is_null() && !doc.mark().is_null()) starts.push_back(doc.mark().pos);
  }
  starts.push_back(input.size());
  size_t count = 0;
  for (const auto& doc : docs) {
    if (doc.is_null()) continue; // an empty document, e.g. after a trailing '---'
    ++count;
    if (auto p = DocumentParser(reader, doc).parse()) {
      const auto next = std::upper_bound(starts.begin(), starts.end(), doc.mark().pos);
      const size_t begin = std::min<size_t>(doc.mark().pos, input.size());
      p->source = input.substr(begin, (next == starts.end() ? input.size() : *next) - begin);
      result.policies.push_back(std::make_shared<const Policy>(std::move(*p)));
    }
  }
  if (count == 0) {
    result.diagnostics.push_back(
        {Diagnostic::Level::Error, reader.file(), 1, 1, "", "no policy found: the input is empty",
         "a policy starts with 'apiVersion: " + std::string(kApiVersion) + "'"});
  }
}

// Policies in the block YAML that read_block_yaml reads, when they have nothing to report.
// Diagnostics are left to yaml-cpp's reading, whose marks they are written for (e.g. of
// empty values) and which reports syntax errors.
std::optional<ParseResult> parse_fast(const std::string& input, std::string_view file) {
  YamlTree tree;
  if (!read_block_yaml(input, tree)) return std::nullopt;
  ParseResult result;
  YamlReader reader(std::string(file), input, 1000 + 4 * input.size(), result.diagnostics);
  reader.use_mark_positions();
  parse_documents(input, tree, reader, result);
  if (!result.diagnostics.empty()) return std::nullopt;
  return result;
}

} // namespace

ParseResult parse_policies(std::string_view text, std::string_view file) {
  ParseResult result;
  if (text.size() > kMaxPolicyBytes) {
    result.diagnostics.push_back(
        {Diagnostic::Level::Error, std::string(file), 0, 0, "",
         "input too large (" + std::to_string(text.size()) + " bytes)",
         "policies are at most " + std::to_string(kMaxPolicyBytes) + " bytes"});
    return result;
  }
  const std::string input(text);
  if (auto fast = parse_fast(input, file)) return std::move(*fast);
  YamlReader reader(std::string(file), input, 1000 + 4 * text.size(), result.diagnostics);
  YamlTree tree;
  if (!load_yaml(input, reader, tree)) return result;
  parse_documents(input, tree, reader, result);
  // Errors are found field by field; the reader wants them in the order of the text.
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  return result;
}

} // namespace corral::policy
