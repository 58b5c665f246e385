#include "policy/startup_set.h"

#include <array>

#include "policy/glob.h"

namespace corral::policy {
namespace {

// Measured with strace in the runtime tier's images (Debian 12 binaries, runc 1.1) for
// `ctr task exec` (runc init), bash, dash, cat, head, su, ls, whoami and for a locale set:
// the opens that succeed before the program does what it was started for.
constexpr std::array<StartupEntry, 20> kEntries = {{
    {"/etc/ld.so.cache", "ld.so: the loader cache, read at every dynamic exec"},
    {"/etc/passwd", "runc init: user lookup at every exec into the container; glibc NSS"},
    {"/etc/group", "runc init: group lookup at every exec into the container; glibc NSS"},
    {"/etc/nsswitch.conf", "glibc NSS: read before /etc/passwd and /etc/group lookups"},
    {"/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
     "the Go runtime of runc init, at every exec into the container"},
    {"/usr/lib/locale/**", "glibc setlocale(): locale-archive and C.utf8/LC_*"},
    // Shared objects: what ld.so maps for a dynamic exec (DT_NEEDED) and what programs
    // dlopen at start (PAM, NSS modules), in the multiarch and the plain library trees.
    {"/usr/lib/**.so", "ld.so and dlopen: shared objects"},
    {"/usr/lib/**.so.*", "ld.so and dlopen: shared objects"},
    {"/usr/lib64/**.so", "ld.so and dlopen: shared objects"},
    {"/usr/lib64/**.so.*", "ld.so and dlopen: shared objects"},
    {"/usr/lib32/**.so", "ld.so and dlopen: shared objects (32-bit programs)"},
    {"/usr/lib32/**.so.*", "ld.so and dlopen: shared objects (32-bit programs)"},
    {"/usr/local/lib/**.so", "ld.so and dlopen: shared objects"},
    {"/usr/local/lib/**.so.*", "ld.so and dlopen: shared objects"},
    {"/lib/**.so", "ld.so and dlopen: shared objects (images without merged /usr)"},
    {"/lib/**.so.*", "ld.so and dlopen: shared objects (images without merged /usr)"},
    {"/lib64/**.so", "ld.so and dlopen: shared objects (images without merged /usr)"},
    {"/lib64/**.so.*", "ld.so and dlopen: shared objects (images without merged /usr)"},
    {"/lib32/**.so", "ld.so and dlopen: shared objects (32-bit programs)"},
    {"/lib32/**.so.*", "ld.so and dlopen: shared objects (32-bit programs)"},
}};

} // namespace

std::span<const StartupEntry> startup_set() {
  return kEntries;
}

const StartupEntry* startup_entry(std::string_view path) {
  for (const auto& e : kEntries) {
    if (glob_match(e.glob, path)) return &e;
  }
  return nullptr;
}

} // namespace corral::policy
