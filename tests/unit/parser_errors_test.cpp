// Malformed policies: each error names the place (line:column, field path), the reason and,
// where one helps, a hint; the document yields no policy.
#include <gtest/gtest.h>

#include "policy/parser.h"
#include "test_util.h"

namespace corral::policy {
namespace {

using testing::dump;
using testing::has_error;
using testing::parse;
using testing::policy_with;
using testing::yaml;

size_t error_count(const ParseResult& r) {
  size_t n = 0;
  for (const auto& d : r.diagnostics) n += d.level == Diagnostic::Level::Error ? 1 : 0;
  return n;
}

// A rejected document yields no policy and exactly the one expected error.
void expect_only(const ParseResult& r, std::string_view field, int line, int column,
                 std::string_view reason, std::string_view hint = {}) {
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  EXPECT_EQ(error_count(r), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, field, line, column, reason, hint));
}

TEST(ParserErrors, DiagnosticFormat) {
  const Diagnostic d{Diagnostic::Level::Error,
                     "nginx.yaml",
                     12,
                     13,
                     "spec.process.matchPaths[1].path",
                     "'usr/bin/bash' is not an absolute path",
                     "start it with '/'"};
  EXPECT_EQ(d.to_string(), "nginx.yaml:12:13: error: spec.process.matchPaths[1].path: "
                           "'usr/bin/bash' is not an absolute path (hint: start it with '/')");
  const Diagnostic w{Diagnostic::Level::Warning, "", 0, 0, "", "r", ""};
  EXPECT_EQ(w.to_string(), "<input>: warning: r");
  EXPECT_TRUE(has_errors({d}));
  EXPECT_FALSE(has_errors({w}));
}

TEST(ParserErrors, EmptyInput) {
  for (const std::string text :
       {"", "   \n\t\n", "# only a comment\n\n# another\n", "---\n", "---\n...\n", "~\n"}) {
    const auto r = parse(text);
    EXPECT_FALSE(r.ok()) << "text: " << text;
    EXPECT_TRUE(r.policies.empty());
    EXPECT_TRUE(has_error(r, "", 1, 1, "no policy found: the input is empty",
                          "a policy starts with 'apiVersion: security.kubearmor.com/v1'"));
  }
}

TEST(ParserErrors, NotAMapping) {
  expect_only(parse("just some words\n"), "", 1, 1, "expected a mapping, found a scalar",
              "a policy starts with 'apiVersion");
  expect_only(parse("- a\n- b\n"), "", 1, 1, "expected a mapping, found a list");
}

TEST(ParserErrors, UnclosedQuote) {
  // yaml-cpp itself would take the rest of the file as the name.
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: "unterminated
spec: {}
)"));
  EXPECT_TRUE(r.policies.empty());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "", 4, 9, "invalid YAML: quoted string without its closing quote",
                        "end it with \""));
  EXPECT_TRUE(
      has_error(parse("a: 'it''s\n"), "", 1, 4, "without its closing quote", "end it with '"));
  EXPECT_TRUE(has_error(parse("a: &x !!str \"b\\\"\n"), "", 1, 13, "without its closing quote"));
  // Closed quotes, also spanning lines or holding escaped quotes, are fine.
  for (const std::string text : {"a: \"b\\\"\"\n", "a: 'it''s'\n", "a: \"x\n  y\"\n", "- 'q'"}) {
    const auto ok = parse(text);
    for (const auto& d : ok.diagnostics) {
      EXPECT_EQ(d.reason.find("closing quote"), std::string::npos) << text << ": " << d.to_string();
    }
  }
}

TEST(ParserErrors, UnclosedBracket) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: x
spec:
  selector:
    matchLabels: {app: nginx
  process:
    matchPaths:
    - path: /bin/sh
)"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(
      has_error(r, "", 7, 18, "invalid YAML: this '{' is never closed", "close it with '}'"));
  EXPECT_TRUE(has_error(parse("a: [1, [2, 3]\n"), "", 1, 4, "this '[' is never closed",
                        "close it with ']'"));
}

TEST(ParserErrors, BadIndentation) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: x
 spec:
)"));
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "", 5, 2, "invalid YAML: end of map not found",
                        "check this line's indentation against the lines above it"));
}

TEST(ParserErrors, TabIndentation) {
  const auto r = parse(policy_with("  process:\n\tmatchPaths:\n    - path: /bin/sh\n"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "", 10, 2, "invalid YAML",
                        "indent with spaces: YAML does not allow tabs in indentation"));
}

TEST(ParserErrors, MissingSpaceAfterColon) {
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path:/bin/sh
)"));
  expect_only(r, "spec.process.matchPaths[0]", 11, 7, "expected a mapping, found a scalar",
              "put a space after ':' to write a field (key: value)");
}

TEST(ParserErrors, WrongApiVersionAndKind) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v2
kind: KubeArmorPolicyy
metadata:
  name: x
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
)"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  EXPECT_EQ(error_count(r), 2u) << dump(r);
  EXPECT_TRUE(has_error(r, "apiVersion", 1, 13,
                        "unsupported apiVersion 'security.kubearmor.com/v2'",
                        "use security.kubearmor.com/v1"));
  EXPECT_TRUE(has_error(r, "kind", 2, 7, "unknown kind 'KubeArmorPolicyy'",
                        "one of KubeArmorPolicy, KubeArmorClusterPolicy, KubeArmorHostPolicy"));
}

TEST(ParserErrors, MissingTopLevelFields) {
  const auto r = parse("status: {}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(error_count(r), 4u) << dump(r);
  EXPECT_TRUE(
      has_error(r, "apiVersion", 1, 1, "missing required field", "security.kubearmor.com/v1"));
  EXPECT_TRUE(has_error(r, "kind", 1, 1, "missing required field", "one of KubeArmorPolicy"));
  EXPECT_TRUE(has_error(r, "metadata", 1, 1, "missing required field", "metadata.name"));
  EXPECT_TRUE(has_error(r, "spec", 1, 1, "missing required field"));
}

TEST(ParserErrors, MissingMetadataName) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  namespace: shop
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "metadata.name", 4, 3, "missing required field");
}

TEST(ParserErrors, EmptyMetadataNameAndNamespace) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ""
  namespace: ''
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
)"));
  EXPECT_EQ(error_count(r), 2u) << dump(r);
  EXPECT_TRUE(has_error(r, "metadata.name", 4, 9, "must not be empty"));
  EXPECT_TRUE(has_error(r, "metadata.namespace", 5, 14, "must not be empty"));
}

TEST(ParserErrors, MetadataWithoutValue) {
  // yaml-cpp places an empty value at the next token (here `spec` on line 4); the error
  // must name the line of the key.
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "metadata", 3, 1, "expected a mapping, found null");
}

TEST(ParserErrors, StringWhereListExpected) {
  const auto r = parse(policy_with(R"(
  tags: pci
  process:
    matchPaths: /bin/sh
)"));
  EXPECT_EQ(error_count(r), 3u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.tags", 9, 9, "expected a list, found a scalar"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths", 11, 17, "expected a list, found a scalar"));
  // Nothing usable is left in the section.
  EXPECT_TRUE(has_error(r, "spec.process", 11, 5, "section has no rules",
                        "add one of matchPaths, matchDirectories, matchPatterns"));
}

TEST(ParserErrors, ListWhereMapExpected) {
  const auto r = parse(policy_with(R"(
  process:
    - matchPaths:
      - path: /bin/sh
)"));
  expect_only(r, "spec.process", 10, 5, "expected a mapping, found a list");
}

TEST(ParserErrors, MapWhereStringExpected) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - path: {nested: /etc}
      fromSource: /bin/sh
)"));
  EXPECT_EQ(error_count(r), 2u) << dump(r);
  EXPECT_TRUE(
      has_error(r, "spec.file.matchPaths[0].path", 11, 13, "expected a string, found a mapping"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].fromSource", 12, 19,
                        "expected a list, found a scalar"));
}

TEST(ParserErrors, NonStringFieldNames) {
  const auto r = parse(policy_with(R"(
  process:
    ? [a, b]
    : x
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.process", 10, 7, "field names must be plain strings");
}

TEST(ParserErrors, UnknownFieldWithNearestName) {
  const auto r = parse(policy_with(R"(
  process:
    matchPath:
    - path: /bin/sh
)"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(
      has_error(r, "spec.process.matchPath", 10, 5, "unknown field", "did you mean 'matchPaths'?"));
  EXPECT_TRUE(has_error(r, "spec.process", 10, 5, "section has no rules"));
  EXPECT_EQ(error_count(r), 2u) << dump(r);
}

TEST(ParserErrors, UnknownFieldsEverywhere) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kinds: KubeArmorPolicy
metadata:
  nmae: x
spec:
  selectr:
    matchLabels: {app: x}
  file:
    matchPaths:
    - path: /etc/passwd
      readonly: true
      ownerOnly: true
      fromSource:
      - paths: /bin/cat
      zzzzzzzz: 1
)"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "kinds", 2, 1, "unknown field", "did you mean 'kind'?"));
  EXPECT_TRUE(has_error(r, "metadata.nmae", 4, 3, "unknown field", "did you mean 'name'?"));
  EXPECT_TRUE(has_error(r, "spec.selectr", 6, 3, "unknown field", "did you mean 'selector'?"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].readonly", 11, 7, "unknown field",
                        "did you mean 'readOnly'?"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].fromSource[0].paths", 14, 9, "unknown field",
                        "did you mean 'path'?"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].zzzzzzzz", 15, 7, "unknown field",
                        "valid fields here: path, readOnly, ownerOnly, fromSource, pts, severity, "
                        "tags, message, action"));
}

TEST(ParserErrors, FieldOfAnotherRuleKind) {
  // readOnly belongs to file rules only; recursive to directories only.
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path: /bin/sh
      readOnly: true
      recursive: true
)"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0].readOnly", 12, 7, "unknown field"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0].recursive", 13, 7, "unknown field"));
}

TEST(ParserErrors, DuplicateField) {
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path: /bin/sh
      path: /bin/bash
)"));
  expect_only(r, "spec.process.matchPaths[0].path", 12, 7, "duplicate field");
}

TEST(ParserErrors, BadActionListsValidValues) {
  const auto r = parse(policy_with(R"(
  action: Deny
  process:
    matchPaths:
    - path: /bin/sh
      action: allowed
)"));
  EXPECT_EQ(error_count(r), 2u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.action", 9, 11, "invalid value 'Deny'",
                        "valid values: Allow, Audit, Block"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0].action", 13, 15, "invalid value 'allowed'",
                        "valid values: Allow, Audit, Block"));
}

TEST(ParserErrors, SeverityOutOfRange) {
  const auto r = parse(policy_with(R"(
  severity: 0
  process:
    severity: 11
    matchPaths:
    - path: /bin/sh
      severity: -3
)"));
  EXPECT_EQ(error_count(r), 3u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.severity", 9, 13, "severity 0 is out of range",
                        "an integer from 1 to 10"));
  EXPECT_TRUE(has_error(r, "spec.process.severity", 11, 15, "severity 11 is out of range",
                        "an integer from 1 to 10"));
  EXPECT_TRUE(
      has_error(r, "spec.process.matchPaths[0].severity", 14, 17, "severity -3 is out of range"));
}

TEST(ParserErrors, SeverityNotAnInteger) {
  const auto r = parse(policy_with(R"(
  severity: high
  process:
    severity: 2.5
    matchPaths:
    - path: /bin/sh
      severity: 99999999999999999999
)"));
  EXPECT_EQ(error_count(r), 3u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.severity", 9, 13, "expected an integer, found 'high'"));
  EXPECT_TRUE(has_error(r, "spec.process.severity", 11, 15, "expected an integer, found '2.5'"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0].severity", 14, 17, "expected an integer"));
}

TEST(ParserErrors, BadBoolean) {
  const auto r = parse(policy_with(R"(
  file:
    matchDirectories:
    - dir: /etc/
      recursive: yes please
)"));
  expect_only(r, "spec.file.matchDirectories[0].recursive", 12, 18,
              "expected true or false, found 'yes please'");
}

TEST(ParserErrors, RelativePaths) {
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path: /usr/sbin/nginx
    - path: usr/bin/bash
    - path: /bin/sh
      fromSource:
      - path: bash
    matchDirectories:
    - dir: tmp/
    matchPatterns:
    - pattern: "*.sh"
)"));
  EXPECT_EQ(error_count(r), 4u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[1].path", 12, 13,
                        "'usr/bin/bash' is not an absolute path", "start it with '/'"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[2].fromSource[0].path", 15, 15,
                        "'bash' is not an absolute path", "start it with '/'"));
  EXPECT_TRUE(has_error(r, "spec.process.matchDirectories[0].dir", 17, 12,
                        "'tmp/' is not an absolute path"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPatterns[0].pattern", 19, 16,
                        "'*.sh' is not an absolute path"));
}

TEST(ParserErrors, EmptyPath) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - path: ""
)"));
  expect_only(r, "spec.file.matchPaths[0].path", 11, 13, "'' is not an absolute path");
}

TEST(ParserErrors, DirectoryWithoutTrailingSlash) {
  const auto r = parse(policy_with(R"(
  file:
    matchDirectories:
    - dir: /etc
)"));
  expect_only(r, "spec.file.matchDirectories[0].dir", 11, 12, "a directory must end in '/'",
              "dir: '/etc/'");
}

TEST(ParserErrors, PathEndingInSlash) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - path: /etc/
)"));
  expect_only(r, "spec.file.matchPaths[0].path", 11, 13,
              "'/etc/' ends in '/', which names a directory",
              "use matchDirectories with dir: '/etc/'");
}

TEST(ParserErrors, ExecnameWithSlash) {
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - execname: /usr/bin/bash
    - execname: ""
)"));
  EXPECT_EQ(error_count(r), 2u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0].execname", 11, 17,
                        "an execname is a file name without '/'", "e.g. execname: bash"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[1].execname", 12, 17,
                        "an execname is a file name without '/'"));
}

TEST(ParserErrors, PathAndExecnameTogetherOrNeither) {
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    - path: /bin/sh
      execname: sh
    - ownerOnly: true
  file:
    matchPaths:
    - execname: sh
)"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0]", 11, 7, "path and execname are exclusive",
                        "give path or execname"));
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[1]", 13, 7, "missing required field",
                        "give path or execname"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].execname", 16, 7, "unknown field"));
  EXPECT_TRUE(
      has_error(r, "spec.file.matchPaths[0]", 16, 7, "missing required field", "give path"));
}

TEST(ParserErrors, MissingTargets) {
  const auto r = parse(policy_with(R"(
  file:
    matchDirectories:
    - recursive: true
    matchPatterns:
    - readOnly: true
  network:
    matchProtocols:
    - action: Allow
  capabilities:
    matchCapabilities:
    - severity: 2
)"));
  EXPECT_EQ(error_count(r), 4u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.file.matchDirectories[0].dir", 11, 7, "missing required field",
                        "a directory ending in '/'"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPatterns[0].pattern", 13, 7, "missing required field"));
  EXPECT_TRUE(
      has_error(r, "spec.network.matchProtocols[0].protocol", 16, 7, "missing required field"));
  EXPECT_TRUE(has_error(r, "spec.capabilities.matchCapabilities[0].capability", 19, 7,
                        "missing required field"));
}

TEST(ParserErrors, FromSourceEntries) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - path: /etc/hosts
      fromSource:
      - {}
      - /bin/cat
      - path: /bin/
)"));
  EXPECT_EQ(error_count(r), 3u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].fromSource[0].path", 13, 9,
                        "missing required field", "the acting program, e.g. /bin/bash"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].fromSource[1]", 14, 9,
                        "expected a mapping, found a scalar"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPaths[0].fromSource[2].path", 15, 15,
                        "ends in '/', which names a directory"));
}

TEST(ParserErrors, UnknownProtocolWithHint) {
  const auto r = parse(policy_with(R"(
  network:
    matchProtocols:
    - protocol: tcp,udpp
    - protocol: carrier-pigeon
    - protocol: tcp,,udp
)"));
  EXPECT_EQ(error_count(r), 3u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.network.matchProtocols[0].protocol", 11, 17,
                        "unknown protocol 'udpp'", "did you mean 'udp'?"));
  EXPECT_TRUE(has_error(r, "spec.network.matchProtocols[1].protocol", 12, 17,
                        "unknown protocol 'carrier-pigeon'",
                        "valid: tcp, udp, icmp, icmpv6, raw, sctp"));
  EXPECT_TRUE(has_error(r, "spec.network.matchProtocols[2].protocol", 13, 17,
                        "empty protocol name in 'tcp,,udp'"));
}

TEST(ParserErrors, UnknownCapabilityWithHint) {
  const auto r = parse(policy_with(R"(
  capabilities:
    matchCapabilities:
    - capability: CAP_NET_RAW, sys_admn
    - capability: CAP_
    - capability: superpower
)"));
  EXPECT_EQ(error_count(r), 3u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.capabilities.matchCapabilities[0].capability", 11, 19,
                        "unknown capability 'sys_admn'", "did you mean 'sys_admin'?"));
  EXPECT_TRUE(has_error(r, "spec.capabilities.matchCapabilities[1].capability", 12, 19,
                        "unknown capability 'CAP_'"));
  EXPECT_TRUE(has_error(r, "spec.capabilities.matchCapabilities[2].capability", 13, 19,
                        "unknown capability 'superpower'", "valid: chown, dac_override"));
}

TEST(ParserErrors, UnbalancedPattern) {
  const auto r = parse(policy_with(R"(
  file:
    matchPatterns:
    - pattern: /tmp/[a-z*.sh
    - pattern: /tmp/a]b
    - pattern: /tmp/[!]
    - pattern: /tmp/[]
)"));
  EXPECT_EQ(error_count(r), 4u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.file.matchPatterns[0].pattern", 11, 16,
                        "unbalanced '[' ']' in pattern '/tmp/[a-z*.sh'", "e.g. /tmp/[a-z]*.sh"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPatterns[1].pattern", 12, 16, "unbalanced"));
  // A ']' right after '[' or '[!' is a member of the class (as glob_match reads it), so
  // these classes are never closed.
  EXPECT_TRUE(has_error(r, "spec.file.matchPatterns[2].pattern", 13, 16, "unbalanced"));
  EXPECT_TRUE(has_error(r, "spec.file.matchPatterns[3].pattern", 14, 16, "unbalanced"));
}

TEST(ParserErrors, ClassesAsGlobReadsThem) {
  const auto r = parse(policy_with(R"(
  file:
    matchPatterns:
    - pattern: /tmp/[]]x
    - pattern: /tmp/[!]a]
    - pattern: /tmp/[[]/[^x]/[a-z]*
)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policies[0]->rules.size(), 3u);
}

TEST(ParserErrors, SectionWithNoRules) {
  const auto r = parse(policy_with(R"(
  process:
  file: {}
  network:
    matchProtocols: []
  capabilities:
    action: Allow
)"));
  EXPECT_EQ(error_count(r), 4u) << dump(r);
  // `process:` is empty; the error names its line, not the next key's.
  EXPECT_TRUE(has_error(r, "spec.process", 9, 3, "section has no rules",
                        "add one of matchPaths, matchDirectories, matchPatterns"));
  EXPECT_TRUE(has_error(r, "spec.file", 10, 9, "section has no rules"));
  EXPECT_TRUE(
      has_error(r, "spec.network", 12, 5, "section has no rules", "add one of matchProtocols"));
  EXPECT_TRUE(has_error(r, "spec.capabilities", 14, 5, "section has no rules",
                        "add one of matchCapabilities"));
}

TEST(ParserErrors, SpecWithNoSections) {
  const auto r = parse(policy_with("  severity: 3\n"));
  expect_only(r, "spec", 6, 3, "the policy has no rules",
              "add a process, file, network or capabilities section");
}

TEST(ParserErrors, UnsupportedSections) {
  const auto r = parse(policy_with(R"(
  syscalls:
    matchSyscalls:
    - syscall: [open]
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.syscalls", 10, 5, "not supported by Corral");
}

TEST(ParserErrors, SelectorOnHostPolicy) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: h
spec:
  selector:
    matchLabels:
      kubernetes.io/hostname: node-1
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.selector", 7, 5, "not valid for KubeArmorHostPolicy",
              "use spec.nodeSelector");
}

TEST(ParserErrors, NodeSelectorOnPolicy) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: p
spec:
  nodeSelector:
    matchLabels: {a: b}
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.nodeSelector", 7, 5, "not valid for KubeArmorPolicy", "use spec.selector");
}

TEST(ParserErrors, MissingSelector) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: h
spec:
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.nodeSelector", 6, 3, "missing required field");
}

TEST(ParserErrors, HostPolicyNeedsFromSourceOnNetworkAndCapabilities) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: h
spec:
  nodeSelector:
    matchLabels:
      kubearmor.io/hostname: "*"
  network:
    matchProtocols:
    - protocol: tcp
  capabilities:
    matchCapabilities:
    - capability: net_raw
      fromSource: []
)"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  EXPECT_EQ(error_count(r), 2u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.network.matchProtocols[0].fromSource", 11, 7,
                        "required on network and capability rules of a KubeArmorHostPolicy",
                        "name the programs the rule applies to"));
  // An empty list would mean "every program".
  EXPECT_TRUE(has_error(r, "spec.capabilities.matchCapabilities[0].fromSource", 15, 19,
                        "must not be empty", "name the programs the rule applies to"));
}

TEST(ParserErrors, HostPolicyWithoutNodeSelectorExpressions) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: h
spec:
  nodeSelector:
    matchExpressions: []
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.nodeSelector.matchExpressions", 7, 5, "unknown field");
}

TEST(ParserErrors, BadExpressions) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: p
spec:
  selector:
    matchLabels: [app]
    matchExpressions:
    - key: namespace
      operator: Exists
      values: [app]
    - {}
  process:
    matchPaths:
    - path: /bin/sh
)"));
  EXPECT_TRUE(has_error(r, "spec.selector.matchLabels", 7, 18, "expected a mapping of label: value",
                        "e.g. app: nginx"));
  EXPECT_TRUE(has_error(r, "spec.selector.matchExpressions[0].key", 9, 12,
                        "invalid value 'namespace'", "valid values: label"));
  EXPECT_TRUE(has_error(r, "spec.selector.matchExpressions[0].operator", 10, 17,
                        "invalid value 'Exists'", "valid values: In, NotIn"));
  EXPECT_TRUE(
      has_error(r, "spec.selector.matchExpressions[1].key", 12, 7, "missing required field"));
  EXPECT_TRUE(has_error(r, "spec.selector.matchExpressions[1].operator", 12, 7,
                        "missing required field", "In or NotIn"));
  EXPECT_TRUE(
      has_error(r, "spec.selector.matchExpressions[1].values", 12, 7, "missing required field"));
}

TEST(ParserErrors, LabelExpressionValueNeedsEquals) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata:
  name: c
spec:
  selector:
    matchExpressions:
    - key: label
      operator: In
      values:
      - app=nginx
      - nginx
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.selector.matchExpressions[0].values[1]", 12, 9,
              "a label value must be key=value", "e.g. app=nginx");
}

TEST(ParserErrors, LabelValueMustBeAString) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: p
spec:
  selector:
    matchLabels:
      app: [x]
  process:
    matchPaths:
    - path: /bin/sh
)"));
  expect_only(r, "spec.selector.matchLabels.app", 8, 12, "expected a string, found a list");
}

TEST(ParserErrors, EmptyListItem) {
  // yaml-cpp places an empty item at the next '-'; the error names the empty item's line.
  const auto r = parse(policy_with(R"(
  process:
    matchPaths:
    -
    - path: /bin/sh
)"));
  expect_only(r, "spec.process.matchPaths[0]", 11, 5, "expected a mapping, found null");
}

TEST(ParserErrors, EmptyValueFollowedByComments) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - path:   # to be filled in
      # more notes
      readOnly: true
)"));
  expect_only(r, "spec.file.matchPaths[0].path", 11, 7, "expected a string, found null");
}

TEST(ParserErrors, ColumnsCountCharactersNotBytes) {
  const auto r = parse(policy_with(R"(
  file:
    matchPaths:
    - {path: /données/é, readOnly: peut-être}
)"));
  expect_only(r, "spec.file.matchPaths[0].readOnly", 11, 36,
              "expected true or false, found 'peut-être'");
}

TEST(ParserErrors, MultipleErrorsAllReportedInTextOrder) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: many
spec:
  selector:
    matchLabels:
      app: nginx
  process:
    matchPaths:
    - path: /usr/sbin/nginx
    - path: usr/bin/bash
    matchPath:
    - path: /a
  action: Deny
  severity: 11
)"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  ASSERT_EQ(r.diagnostics.size(), 4u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].field, "spec.process.matchPaths[1].path");
  EXPECT_EQ(r.diagnostics[0].line, 12);
  EXPECT_EQ(r.diagnostics[1].field, "spec.process.matchPath");
  EXPECT_EQ(r.diagnostics[1].line, 13);
  EXPECT_EQ(r.diagnostics[2].field, "spec.action");
  EXPECT_EQ(r.diagnostics[2].line, 15);
  EXPECT_EQ(r.diagnostics[3].field, "spec.severity");
  EXPECT_EQ(r.diagnostics[3].line, 16);
}

TEST(ParserErrors, OneBadDocumentDoesNotHideTheGoodOnes) {
  const auto r = parse(yaml(R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: good
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: bad
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: bin/sh
)"));
  // The CLI applies nothing when any document is bad (ok() is false), but the good
  // document is still parsed so that tools can show it.
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.policies.size(), 1u);
  EXPECT_EQ(r.policies[0]->name, "good");
  EXPECT_EQ(error_count(r), 1u) << dump(r);
  EXPECT_TRUE(has_error(r, "spec.process.matchPaths[0].path", 21, 13, "not an absolute path"));
}

TEST(ParserErrors, SyntaxErrorInALaterDocumentRejectsTheFile) {
  const auto r = parse(testing::policy_with("  process:\n    matchPaths:\n    - path: /a\n") +
                       "---\nkey: [unclosed\n");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.policies.empty());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_NE(r.diagnostics[0].reason.find("invalid YAML"), std::string::npos);
}

} // namespace
} // namespace corral::policy
