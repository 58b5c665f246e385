// The one decision function every enforcer shares (POLICY.md "Verdict for one access").
#pragma once

#include <string>
#include <string_view>

#include "policy/ruleset.h"
#include "policy/startup_set.h"

namespace corral::policy {

struct Access {
  Category category = Category::Process;
  std::string_view target; // path (process, file), protocol (network), capability name
  std::string_view source; // the acting program's path; "" when unknown
  bool write = false;      // file opened for write, append or truncate
  bool owner = true;       // file uid == process uid
  bool pts = false;        // the process's controlling terminal is a pseudo-terminal
  // The file is as the image shipped it: not created, changed or moved in after the
  // workload started (its ctime). Only such files are in the implicit start-up set.
  bool shipped = true;
};

struct Verdict {
  bool allow = true;
  bool alert = false;
  std::string_view action; // "Allow", "Audit", "Block", "Audit (Block)"; "" when unmatched
  const CompiledRule* rule = nullptr; // the deciding rule; null for posture and no match
  bool default_posture = false;
  // Allowed as a read of the implicit start-up set (no rule matched); null otherwise.
  const StartupEntry* startup = nullptr;
  // Denied by the lock of this locked policy (docs/policy.md "Locked policies") although
  // the rules of all policies allow; `ignored` is the rule that would have decided.
  const Policy* lock = nullptr;
  const CompiledRule* ignored = nullptr;

  // "DefaultPosture", the deciding rule's policy name, or "".
  [[nodiscard]] std::string_view policy_name() const;
  // How the verdict was reached, e.g. "only-allow-nginx-exec spec.process.matchPaths[0]
  // (path /usr/sbin/nginx) at nginx.yaml:14:7".
  [[nodiscard]] std::string explain(const RuleSet& rs, Category category) const;

private:
  [[nodiscard]] std::string explain_rules(const RuleSet& rs, Category category) const;
};

Verdict decide(const RuleSet& rs, const Access& access);

} // namespace corral::policy
