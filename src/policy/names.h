// The protocol and capability names policies may use.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace corral::policy {

// Lower-case protocol names KubeArmor accepts: tcp udp icmp icmpv6 raw sctp.
std::span<const std::string_view> protocol_names();
// Linux capability names without CAP_, lower case: net_raw, sys_admin, ...
std::span<const std::string_view> capability_names();

// Normalised (lower case, CAP_ prefix dropped) name when known, else nullopt.
std::optional<std::string> normalize_protocol(std::string_view name);
std::optional<std::string> normalize_capability(std::string_view name);

// The capability number (CAP_NET_RAW = 13), or -1.
int capability_number(std::string_view normalized);

} // namespace corral::policy
