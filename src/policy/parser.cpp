#include "policy/parser.h"

#include <array>

#include <yaml-cpp/yaml.h>

#include "policy/rules_parser.h"
#include "policy/yaml_reader.h"

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
  DocumentParser(YamlReader& r, const YAML::Node& doc) : r_(r), doc_(doc) {}

  std::optional<Policy> parse() {
    const size_t errors_before = r_.error_count();
    if (!r_.expect_map(doc_, "", kTopFields)) return std::nullopt;
    Policy p;
    p.origin = Origin{r_.file(), doc_.Mark().line + 1, doc_.Mark().column + 1, ""};
    parse_header(p);
    parse_metadata(p);
    const YAML::Node& spec = doc_["spec"];
    if (!spec.IsDefined()) {
      r_.error(doc_, "spec", "missing required field");
    } else {
      parse_spec(p, spec);
    }
    if (r_.error_count() != errors_before) return std::nullopt;
    return p;
  }

private:
  void parse_header(Policy& p) {
    const YAML::Node& api = doc_["apiVersion"];
    if (!api.IsDefined()) {
      r_.error(doc_, "apiVersion", "missing required field", std::string(kApiVersion));
    } else if (auto v = r_.string(api, "apiVersion"); v && *v != kApiVersion) {
      r_.error(api, "apiVersion", "unsupported apiVersion '" + *v + "'",
               "use " + std::string(kApiVersion));
    }
    const YAML::Node& kind = doc_["kind"];
    if (!kind.IsDefined()) {
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
    r_.error(kind, "kind", "unknown kind '" + *k + "'", "one of " + list_of(kKinds));
  }

  void parse_metadata(Policy& p) {
    const YAML::Node& md = doc_["metadata"];
    if (!md.IsDefined()) {
      r_.error(doc_, "metadata", "missing required field", "metadata.name names the policy");
      return;
    }
    if (!r_.expect_map(md, "metadata", kMetadataFields)) return;
    if (const YAML::Node& name = md["name"]; !name.IsDefined()) {
      r_.error(md, "metadata.name", "missing required field");
    } else if (auto n = r_.string(name, "metadata.name")) {
      if (n->empty()) r_.error(name, "metadata.name", "must not be empty");
      p.name = *n;
    }
    p.namespace_name = "default";
    if (const YAML::Node& ns = md["namespace"]; ns.IsDefined()) {
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
  }

  void parse_spec(Policy& p, const YAML::Node& spec) {
    if (!r_.expect_map(spec, "spec", spec_fields())) return;
    const bool host = p.kind == Kind::HostPolicy;
    const char* wanted = host ? "nodeSelector" : "selector";
    const char* other = host ? "selector" : "nodeSelector";
    if (spec[other].IsDefined()) {
      r_.error(spec[other], std::string("spec.") + other,
               std::string("not valid for ") + std::string(to_string(p.kind)),
               std::string("use spec.") + wanted);
    } else if (!spec[wanted].IsDefined()) {
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

  void parse_selector(Policy& p, const YAML::Node& sel, const std::string& field) {
    const bool host = p.kind == Kind::HostPolicy;
    if (!r_.expect_map(sel, field,
                       host ? std::span<const std::string_view>(kNodeSelectorFields)
                            : std::span<const std::string_view>(kSelectorFields)))
      return;
    if (const YAML::Node& ml = sel["matchLabels"]; ml.IsDefined() && !ml.IsNull()) {
      parse_labels(ml, field + ".matchLabels", p.selector.match_labels);
    }
    const YAML::Node& me = sel["matchExpressions"];
    if (!me.IsDefined() || me.IsNull() || !r_.expect_seq(me, field + ".matchExpressions")) return;
    for (size_t i = 0; i < me.size(); ++i) {
      parse_expression(p, me[i], field + ".matchExpressions[" + std::to_string(i) + "]");
    }
  }

  void parse_labels(const YAML::Node& ml, const std::string& field, Labels& out) {
    if (!r_.spend()) return;
    if (!ml.IsMap()) {
      r_.error(ml, field, "expected a mapping of label: value", "e.g. app: nginx");
      return;
    }
    for (const auto& kv : ml) {
      const auto key = r_.string(kv.first, field);
      if (!key) continue;
      if (auto value = r_.string(kv.second, field + "." + *key)) out[*key] = *value;
    }
  }

  void parse_expression(Policy& p, const YAML::Node& e, const std::string& field) {
    if (!r_.expect_map(e, field, kExpressionFields)) return;
    Expression x;
    const std::array<std::string_view, 2> keys_ns = {"label", "namespace"};
    const std::array<std::string_view, 1> keys_label = {"label"};
    const auto keys = p.kind == Kind::ClusterPolicy ? std::span<const std::string_view>(keys_ns)
                                                    : std::span<const std::string_view>(keys_label);
    const YAML::Node& key = e["key"];
    const YAML::Node& op = e["operator"];
    const YAML::Node& values = e["values"];
    if (!key.IsDefined()) r_.error(e, field + ".key", "missing required field", list_of(keys));
    if (!op.IsDefined()) r_.error(e, field + ".operator", "missing required field", "In or NotIn");
    if (!values.IsDefined()) r_.error(e, field + ".values", "missing required field");
    if (key.IsDefined()) x.key = r_.choice(key, field + ".key", keys).value_or("");
    if (op.IsDefined())
      x.in = r_.choice(op, field + ".operator", kOperators).value_or("In") == "In";
    if (values.IsDefined()) {
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
  const YAML::Node& doc_;
};

} // namespace

ParseResult parse_policies(std::string_view text, std::string_view file) {
  ParseResult result;
  YamlReader reader(std::string(file), 1000 + 4 * text.size(), result.diagnostics);
  if (text.size() > kMaxPolicyBytes) {
    result.diagnostics.push_back(
        {Diagnostic::Level::Error, std::string(file), 0, 0, "",
         "input too large (" + std::to_string(text.size()) + " bytes)",
         "policies are at most " + std::to_string(kMaxPolicyBytes) + " bytes"});
    return result;
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    // Includes YAML::DeepRecursion: yaml-cpp bounds nesting depth itself.
    const bool has_mark = !e.mark.is_null();
    result.diagnostics.push_back({Diagnostic::Level::Error, std::string(file),
                                  has_mark ? e.mark.line + 1 : 0, has_mark ? e.mark.column + 1 : 0,
                                  "", "invalid YAML: " + e.msg, ""});
    return result;
  }
  size_t count = 0;
  for (const auto& doc : docs) {
    if (doc.IsNull()) continue; // an empty document, e.g. after a trailing '---'
    ++count;
    if (auto p = DocumentParser(reader, doc).parse()) {
      result.policies.push_back(std::make_shared<const Policy>(std::move(*p)));
    }
  }
  if (count == 0) {
    result.diagnostics.push_back(
        {Diagnostic::Level::Error, std::string(file), 0, 0, "",
         "no policy found: the input is empty",
         "a policy starts with 'apiVersion: " + std::string(kApiVersion) + "'"});
  }
  return result;
}

} // namespace corral::policy
