#include "policy/names.h"

#include <algorithm>
#include <array>

#include "core/strings.h"

namespace corral::policy {
namespace {

// "all": KubeArmor's name for every protocol (a rule for it matches any socket).
constexpr std::array<std::string_view, 7> kProtocols = {"tcp", "udp",  "icmp", "icmpv6",
                                                        "raw", "sctp", "all"};

// Indexed by capability number (include/uapi/linux/capability.h).
constexpr std::array<std::string_view, 41> kCapabilities = {"chown",
                                                            "dac_override",
                                                            "dac_read_search",
                                                            "fowner",
                                                            "fsetid",
                                                            "kill",
                                                            "setgid",
                                                            "setuid",
                                                            "setpcap",
                                                            "linux_immutable",
                                                            "net_bind_service",
                                                            "net_broadcast",
                                                            "net_admin",
                                                            "net_raw",
                                                            "ipc_lock",
                                                            "ipc_owner",
                                                            "sys_module",
                                                            "sys_rawio",
                                                            "sys_chroot",
                                                            "sys_ptrace",
                                                            "sys_pacct",
                                                            "sys_admin",
                                                            "sys_boot",
                                                            "sys_nice",
                                                            "sys_resource",
                                                            "sys_time",
                                                            "sys_tty_config",
                                                            "mknod",
                                                            "lease",
                                                            "audit_write",
                                                            "audit_control",
                                                            "setfcap",
                                                            "mac_override",
                                                            "mac_admin",
                                                            "syslog",
                                                            "wake_alarm",
                                                            "block_suspend",
                                                            "audit_read",
                                                            "perfmon",
                                                            "bpf",
                                                            "checkpoint_restore"};

template <size_t N>
std::optional<std::string> find_name(const std::array<std::string_view, N>& names,
                                     std::string_view name) {
  const std::string lower = to_lower(trim(name));
  if (std::find(names.begin(), names.end(), lower) != names.end()) return lower;
  return std::nullopt;
}

} // namespace

std::span<const std::string_view> protocol_names() {
  return kProtocols;
}
std::span<const std::string_view> capability_names() {
  return kCapabilities;
}

std::optional<std::string> normalize_protocol(std::string_view name) {
  return find_name(kProtocols, name);
}

std::optional<std::string> normalize_capability(std::string_view name) {
  std::string_view n = trim(name);
  if (n.size() > 4 && to_lower(n.substr(0, 4)) == "cap_") n.remove_prefix(4);
  return find_name(kCapabilities, n);
}

int capability_number(std::string_view normalized) {
  const auto it = std::find(kCapabilities.begin(), kCapabilities.end(), normalized);
  return it == kCapabilities.end() ? -1 : static_cast<int>(it - kCapabilities.begin());
}

} // namespace corral::policy
