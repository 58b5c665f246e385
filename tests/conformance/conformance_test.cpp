// The conformance table judged by decide() in-process: parse → resolve_settings → compile →
// decide, exactly as `corral explain` and the agent do, without a process in between.
#include <string>

#include <gtest/gtest.h>

#include "case_table.h"
#include "core/strings.h"
#include "policy/decide.h"
#include "policy/names.h"
#include "policy/parser.h"

namespace corral::conformance {
namespace {

// The access as the enforcers hand it to decide(): protocol and capability names are
// normalised first (lower case, without CAP_), as `corral explain` does.
std::string normalized_target(const AccessSpec& a) {
  if (a.category == policy::Category::Network)
    return policy::normalize_protocol(a.target).value_or(a.target);
  if (a.category == policy::Category::Capabilities)
    return policy::normalize_capability(a.target).value_or(a.target);
  return a.target;
}

policy::Workload make_workload(const WorkloadSpec& spec) {
  policy::Workload w;
  w.name = "conformance";
  w.namespace_name = spec.namespace_name;
  w.labels = spec.labels;
  w.annotations = spec.pod_annotations;
  w.host = spec.host;
  w.node_labels = spec.node_labels;
  return w;
}

// Follows the case's symlinked directories, as the agent does inside a container's root:
// /bin/bash -> /usr/bin/bash when /bin -> /usr/bin; nullopt when nothing changes.
policy::PathResolver make_resolver(const policy::Labels& symlinks) {
  if (symlinks.empty()) return nullptr;
  return [symlinks](const std::string& path) -> std::optional<std::string> {
    for (const auto& [link, target] : symlinks) {
      if (path == link || path.starts_with(link + "/")) return target + path.substr(link.size());
    }
    return std::nullopt;
  };
}

// Parses every policy file of the case; false (with the diagnostics) when any has an error.
bool parse_all(const Case& c, std::vector<policy::PolicyPtr>& out, Observed& seen) {
  for (const auto& p : c.policies) {
    const auto parsed = policy::parse_policies(p.text, p.name + ".yaml");
    for (const auto& d : parsed.diagnostics) seen.diagnostics += d.to_string() + "\n";
    seen.rejected = seen.rejected || !parsed.ok();
    out.insert(out.end(), parsed.policies.begin(), parsed.policies.end());
  }
  return !seen.rejected;
}

Observed run_decide(const Case& c) {
  Observed seen;
  std::vector<policy::PolicyPtr> policies;
  if (!parse_all(c, policies, seen)) return seen;

  const policy::Workload w = make_workload(c.workload);
  const auto settings = policy::resolve_settings(
      c.defaults, c.workload.ns_annotations,
      policy::locked_by_any(policies, w) ? policy::Labels{} : w.annotations, nullptr);
  const auto rs = policy::compile(policies, w, settings, make_resolver(c.workload.root_symlinks));

  const std::string target = normalized_target(c.access);
  policy::Access access;
  access.category = c.access.category;
  access.target = target;
  access.source = c.access.source;
  access.write = c.access.write;
  access.owner = c.access.uid == c.access.file_uid;
  access.shipped = !c.access.new_file;
  access.pts = c.access.pts;
  const policy::Verdict v = policy::decide(*rs, access);

  const policy::Rule* rule = v.rule != nullptr ? v.rule->rule : nullptr;
  seen.verdict = v.allow ? "allow" : "deny";
  // decide() leaves the action empty when nothing matched; explain reports that as Allow.
  seen.action = v.action.empty() ? "Allow" : std::string(v.action);
  seen.policy = std::string(v.policy_name());
  seen.severity = rule != nullptr ? std::to_string(rule->severity) : "";
  seen.message = rule != nullptr ? rule->message : "";
  seen.tags = rule != nullptr ? rule->tags.get() : std::vector<std::string>{};
  seen.alert = v.alert;
  seen.rule = v.explain(*rs, access.category);
  return seen;
}

class DecideConformance : public testing::TestWithParam<Case> {};

TEST_P(DecideConformance, Case) {
  const Case& c = GetParam();
  const auto diffs = mismatches(c, run_decide(c));
  if (!diffs.empty()) ADD_FAILURE() << describe(c) << ":\n  " << join(diffs, "\n  ");
}

INSTANTIATE_TEST_SUITE_P(Table, DecideConformance, testing::ValuesIn(cases(CORRAL_CASES_FILE)),
                         [](const testing::TestParamInfo<Case>& info) {
                           return test_name(info.param);
                         });

} // namespace
} // namespace corral::conformance
