// Network verdicts for one socket (docs/policy.md "Network rules"): a socket answers to one
// or more protocol names (SOCK_RAW + IPPROTO_ICMP is both `raw` and `icmp`); each name gets
// its own decide() verdict and the socket's verdict combines them, deny wins. Pure: the
// cgroup-bpf enforcer precomputes its kernel table with it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decide.h"

namespace corral::policy {

// Bits of a socket's name set; the same values as bpf/shared/cgroupnet.h's corral_net_name.
enum SocketName : uint16_t {
  kSockTcp = 1 << 0,
  kSockUdp = 1 << 1,
  kSockIcmp = 1 << 2,
  kSockIcmpv6 = 1 << 3,
  kSockRaw = 1 << 4,
  kSockSctp = 1 << 5,
  kSockOther = 1 << 6, // an inet socket none of the names fits: only `all` rules match it
};

// Every name set the kernel program can produce for an inet socket.
const std::vector<uint16_t>& socket_name_sets();

// The names of a set, most specific first: the protocol's name before `raw`; `kSockOther`
// is "" (matched by `all` rules only).
std::vector<std::string_view> socket_names(uint16_t set);

// The set of names of a socket (family, type, protocol as socket(2) got them after the
// kernel resolved protocol 0), or 0 when it is not a network socket (AF_UNIX, ...).
uint16_t socket_name_set(int family, int type, int protocol);

// KubeArmor's Resource for a socket: "domain=AF_INET type=SOCK_RAW protocol=1".
std::string socket_resource(int family, int type, int protocol);

// The verdict for a socket with names `set` created by the program at `source` ("" when it
// is none of the workload's fromSource programs): every name's decide() verdict must allow;
// the first that denies decides, else the first that alerts, else the first.
Verdict decide_socket(const RuleSet& rs, uint16_t set, std::string_view source);

} // namespace corral::policy
