#include "case_table.h"

#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "core/strings.h"

namespace corral::conformance {
namespace {

// A data error in cases.yaml, with the line it is on.
class TableError : public std::runtime_error {
public:
  TableError(const YAML::Node& at, const std::string& what)
      : std::runtime_error("line " + std::to_string(at.Mark().line + 1) + ": " + what) {}
};

// Typos in the table must fail loudly, not silently drop an expectation.
void expect_keys(const YAML::Node& n, const std::string& what, const std::set<std::string>& keys) {
  if (!n.IsMap()) throw TableError(n, what + " must be a mapping");
  for (const auto& kv : n) {
    const auto key = kv.first.as<std::string>();
    if (keys.count(key) == 0) throw TableError(kv.first, "unknown key '" + key + "' in " + what);
  }
}

std::string scalar(const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) throw TableError(n, what + " must be a scalar");
  return n.Scalar();
}

bool boolean(const YAML::Node& n, const std::string& what) {
  const std::string v = scalar(n, what);
  if (v != "true" && v != "false") throw TableError(n, what + " must be true or false");
  return v == "true";
}

policy::Labels labels(const YAML::Node& n, const std::string& what) {
  policy::Labels out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsMap()) throw TableError(n, what + " must be a mapping");
  for (const auto& kv : n) out[kv.first.as<std::string>()] = scalar(kv.second, what);
  return out;
}

WorkloadSpec workload(const YAML::Node& n) {
  WorkloadSpec w;
  if (!n.IsDefined()) return w;
  expect_keys(n, "workload",
              {"namespace", "labels", "ns_annotations", "pod_annotations", "host", "node_labels",
               "root_symlinks"});
  if (n["namespace"]) w.namespace_name = scalar(n["namespace"], "workload.namespace");
  w.labels = labels(n["labels"], "workload.labels");
  w.ns_annotations = labels(n["ns_annotations"], "workload.ns_annotations");
  w.pod_annotations = labels(n["pod_annotations"], "workload.pod_annotations");
  if (n["host"]) w.host = boolean(n["host"], "workload.host");
  w.node_labels = labels(n["node_labels"], "workload.node_labels");
  w.root_symlinks = labels(n["root_symlinks"], "workload.root_symlinks");
  return w;
}

policy::Posture posture(const YAML::Node& n, const std::string& what) {
  const std::string v = scalar(n, what);
  if (v != "audit" && v != "block") throw TableError(n, what + " must be audit or block");
  return v == "block" ? policy::Posture::Block : policy::Posture::Audit;
}

policy::Postures defaults(const YAML::Node& n) {
  policy::Postures p;
  if (!n.IsDefined()) return p;
  expect_keys(n, "defaults", {"file", "network", "capabilities"});
  if (n["file"]) p.file = posture(n["file"], "defaults.file");
  if (n["network"]) p.network = posture(n["network"], "defaults.network");
  if (n["capabilities"]) p.capabilities = posture(n["capabilities"], "defaults.capabilities");
  return p;
}

AccessSpec access(const YAML::Node& n) {
  expect_keys(n, "access",
              {"exec", "open", "socket", "capability", "write", "source", "uid", "file_uid",
               "new_file", "pts"});
  static const std::pair<const char*, policy::Category> kKinds[] = {
      {"exec", policy::Category::Process},
      {"open", policy::Category::File},
      {"socket", policy::Category::Network},
      {"capability", policy::Category::Capabilities}};
  AccessSpec a;
  int kinds = 0;
  for (const auto& [key, category] : kKinds) {
    if (!n[key]) continue;
    ++kinds;
    a.category = category;
    a.target = scalar(n[key], std::string("access.") + key);
  }
  if (kinds != 1) throw TableError(n, "access needs exactly one of exec, open, socket, capability");
  if (n["write"]) a.write = boolean(n["write"], "access.write");
  if (n["source"]) a.source = scalar(n["source"], "access.source");
  if (n["uid"]) a.uid = n["uid"].as<int>();
  if (n["file_uid"]) a.file_uid = n["file_uid"].as<int>();
  if (n["new_file"]) a.new_file = boolean(n["new_file"], "access.new_file");
  if (n["pts"]) a.pts = boolean(n["pts"], "access.pts");
  return a;
}

Expectation expectation(const YAML::Node& n) {
  Expectation e;
  if (n.IsMap() && n["invalid"]) {
    expect_keys(n, "expect (invalid)", {"invalid"});
    e.invalid_field = scalar(n["invalid"], "expect.invalid");
    return e;
  }
  expect_keys(n, "expect",
              {"verdict", "action", "policy", "alert", "severity", "message", "tags", "rule"});
  for (const char* required : {"verdict", "action", "policy", "alert"}) {
    if (!n[required]) throw TableError(n, std::string("expect needs ") + required);
  }
  e.verdict = scalar(n["verdict"], "expect.verdict");
  if (e.verdict != "allow" && e.verdict != "deny")
    throw TableError(n["verdict"], "expect.verdict must be allow or deny");
  e.action = scalar(n["action"], "expect.action");
  e.policy = n["policy"].IsNull() ? "" : scalar(n["policy"], "expect.policy");
  e.alert = boolean(n["alert"], "expect.alert");
  if (n["severity"]) e.severity = scalar(n["severity"], "expect.severity");
  if (n["message"]) e.message = scalar(n["message"], "expect.message");
  if (n["tags"]) e.tags = n["tags"].as<std::vector<std::string>>();
  if (n["rule"]) e.rule = scalar(n["rule"], "expect.rule");
  return e;
}

Case one_case(const YAML::Node& n, const std::map<std::string, std::string>& texts) {
  expect_keys(n, "a case", {"name", "policies", "workload", "defaults", "access", "expect"});
  for (const char* required : {"name", "policies", "access", "expect"}) {
    if (!n[required]) throw TableError(n, std::string("a case needs ") + required);
  }
  Case c;
  c.name = scalar(n["name"], "name");
  c.line = n.Mark().line + 1;
  for (const auto& p : n["policies"].as<std::vector<std::string>>()) {
    const auto it = texts.find(p);
    if (it == texts.end()) throw TableError(n["policies"], c.name + ": no policy named " + p);
    c.policies.push_back({p, it->second});
  }
  c.workload = workload(n["workload"]);
  c.defaults = defaults(n["defaults"]);
  c.access = access(n["access"]);
  c.expect = expectation(n["expect"]);
  return c;
}

std::vector<Case> parse_table(const std::string& path) {
  const YAML::Node root = YAML::LoadFile(path);
  expect_keys(root, "the table", {"policies", "cases"});
  std::map<std::string, std::string> texts;
  for (const auto& kv : root["policies"]) texts[kv.first.as<std::string>()] = kv.second.Scalar();
  std::vector<Case> out;
  std::set<std::string> names;
  for (const auto& n : root["cases"]) {
    out.push_back(one_case(n, texts));
    if (!names.insert(test_name(out.back())).second)
      throw TableError(n, "duplicate case name " + out.back().name);
  }
  if (out.empty()) throw std::runtime_error("no cases");
  return out;
}

std::string quoted(const std::vector<std::string>& v) {
  return "[" + join(v, ", ") + "]";
}

void compare(std::vector<std::string>& out, const char* field, const std::string& want,
             const std::string& got) {
  if (want != got)
    out.push_back(std::string(field) + ": expected '" + want + "', got '" + got + "'");
}

} // namespace

std::vector<Case> load_cases(const std::string& path) {
  try {
    return parse_table(path);
  } catch (const std::exception& e) {
    Case c;
    c.name = "load_error";
    c.load_error = path + ": " + e.what();
    return {c};
  }
}

const std::vector<Case>& cases(const char* default_path) {
  static const std::vector<Case> table = [&] {
    const char* env = std::getenv("CORRAL_CONFORMANCE_CASES");
    return load_cases(env != nullptr && *env != '\0' ? env : default_path);
  }();
  return table;
}

std::vector<std::string> mismatches(const Case& c, const Observed& seen) {
  std::vector<std::string> out;
  if (!c.load_error.empty()) return {"cannot load the table: " + c.load_error};
  const Expectation& e = c.expect;
  if (e.invalid_field) {
    // Diagnostic::to_string(): "file:line:col: error: FIELD: reason (hint: ...)".
    if (!seen.rejected) {
      out.push_back("expected the policies to be rejected (error at " + *e.invalid_field +
                    "), but they were accepted");
    } else if (seen.diagnostics.find(": error: " + *e.invalid_field + ": ") == std::string::npos) {
      out.push_back("expected an error at " + *e.invalid_field + "; got:\n" + seen.diagnostics);
    }
    return out;
  }
  if (seen.rejected) return {"the policies were rejected:\n" + seen.diagnostics};
  compare(out, "verdict", e.verdict, seen.verdict);
  compare(out, "action", e.action, seen.action);
  compare(out, "policy", e.policy, seen.policy);
  compare(out, "alert", e.alert ? "true" : "false", seen.alert ? "true" : "false");
  if (e.severity) compare(out, "severity", *e.severity, seen.severity);
  if (e.message) compare(out, "message", *e.message, seen.message);
  if (e.tags) compare(out, "tags", quoted(*e.tags), quoted(seen.tags));
  if (e.rule && seen.rule.find(*e.rule) == std::string::npos)
    out.push_back("rule: expected to contain '" + *e.rule + "', got '" + seen.rule + "'");
  return out;
}

std::string describe(const Case& c) {
  return c.name + " (cases.yaml:" + std::to_string(c.line) + ")";
}

std::string test_name(const Case& c) {
  std::string out = c.name;
  for (char& ch : out) {
    const bool alnum =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!alnum) ch = '_';
  }
  return out;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << describe(c);
}

} // namespace corral::conformance
