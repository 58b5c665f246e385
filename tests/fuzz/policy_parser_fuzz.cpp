// libFuzzer target for the policy parser (TESTING.md fuzz tier): any bytes must yield
// diagnostics with a place, or policies that satisfy POLICY.md's validation rules; the
// policies then go through compile() and decide() as an agent would use them.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "policy/decide.h"
#include "policy/names.h"
#include "policy/parser.h"
#include "policy/ruleset.h"

namespace {

using namespace corral::policy;

// A violated invariant is a finding: print it and abort so libFuzzer saves the input.
void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}

void check_diagnostics(const ParseResult& r, std::string_view text) {
  check(!r.ok() || !r.policies.empty(), "ok() without a policy");
  const size_t lines = 1 + static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  for (const auto& d : r.diagnostics) {
    (void)d.to_string();
    if (d.level != Diagnostic::Level::Error) continue;
    check(d.line >= 1 && d.column >= 1, "an error without line:column");
    check(static_cast<size_t>(d.line) <= lines, "an error past the last line");
    check(!d.reason.empty(), "an error without a reason");
  }
}

// What the parser promises about every rule it returns (POLICY.md "Validation").
void check_rule(const Rule& r) {
  check(r.severity >= 1 && r.severity <= 10, "severity out of 1..10");
  check(r.origin.line >= 1 && r.origin.column >= 1, "a rule without an origin");
  for (const auto& s : r.from_source) check(!s.empty() && s[0] == '/', "relative fromSource");
  switch (r.target) {
  case Target::Path:
    check(r.value.size() > 1 && r.value[0] == '/' && r.value.back() != '/', "bad path");
    break;
  case Target::Dir: check(r.value[0] == '/' && r.value.back() == '/', "bad dir"); break;
  case Target::ExecName:
    check(!r.value.empty() && r.value.find('/') == std::string::npos, "bad execname");
    break;
  case Target::Pattern: check(!r.value.empty() && r.value[0] == '/', "bad pattern"); break;
  case Target::Protocol: check(normalize_protocol(r.value) == r.value, "bad protocol"); break;
  case Target::Capability: check(normalize_capability(r.value) == r.value, "bad capability"); break;
  }
}

Verdict decide_one(const RuleSet& rs, Category c, std::string_view target, std::string_view source,
                   bool write) {
  Access a;
  a.category = c;
  a.target = target;
  a.source = source;
  a.write = write;
  a.owner = !write;
  const Verdict v = decide(rs, a);
  (void)v.explain(rs, c);
  check(v.allow || v.alert, "a deny without an alert");
  return v;
}

void exercise(const std::vector<PolicyPtr>& policies) {
  const Policy& first = *policies.front();
  Workload w;
  w.namespace_name = first.namespace_name.empty() ? "default" : first.namespace_name;
  w.labels = first.selector.match_labels;
  w.host = first.kind == Kind::HostPolicy;
  w.node_labels = first.selector.match_labels;
  Settings settings;
  settings.postures = {Posture::Block, Posture::Audit, Posture::Block};
  const auto rs = compile(policies, w, settings);
  decide_one(*rs, Category::Process, "/usr/bin/bash", "/usr/sbin/nginx", false);
  decide_one(*rs, Category::File, "/etc/passwd", "/bin/cat", true);
  decide_one(*rs, Category::Network, "tcp", "/usr/bin/curl", false);
  decide_one(*rs, Category::Capabilities, "net_raw", "/usr/bin/ping", false);
  // Each rule's own target, as the acting program of its first fromSource.
  size_t budget = 32;
  for (const auto& p : policies) {
    for (const auto& r : p->rules) {
      if (budget-- == 0) return;
      const std::string_view source =
          r.from_source.empty() ? std::string_view() : std::string_view(r.from_source.front());
      decide_one(*rs, r.category, r.value, source, r.read_only);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ParseResult r = parse_policies(text, "fuzz");
  check_diagnostics(r, text);
  for (const auto& p : r.policies) {
    check(!p->name.empty(), "a policy without a name");
    for (const auto& rule : p->rules) check_rule(rule);
  }
  if (!r.policies.empty()) exercise(r.policies);
  return 0;
}
