// The implicit start-up set (POLICY.md "Implicit start-up reads"): the few files that the
// loader, glibc and the container runtime read to start any allowed program. A file
// allow-list does not deny an open of them for reading, as KubeArmor's AppArmor profiles
// (built on AppArmor's base abstraction) do not; writes and execs stay judged by the rules,
// and a Block or Audit rule that matches still decides.
#pragma once

#include <span>
#include <string_view>

namespace corral::policy {

struct StartupEntry {
  std::string_view glob; // matched like a matchPatterns glob against the canonical path
  std::string_view why;  // who reads it (measured with strace, see POLICY.md)
};

// Every entry of the set, for docs and `corral explain`.
std::span<const StartupEntry> startup_set();

// The entry that covers `path` (a canonical path), or null.
const StartupEntry* startup_entry(std::string_view path);

} // namespace corral::policy
