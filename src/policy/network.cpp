#include "policy/network.h"

#include <array>

namespace corral::policy {
namespace {

// include/linux/socket.h, include/linux/net.h, include/uapi/linux/in.h
constexpr int kAfInet = 2, kAfInet6 = 10;
constexpr int kStream = 1, kDgram = 2, kRaw = 3, kSeqpacket = 5;
constexpr int kIcmp = 1, kTcp = 6, kUdp = 17, kIcmpv6 = 58, kSctp = 132, kUdplite = 136,
              kMptcp = 262;

struct NameBit {
  uint16_t bit;
  std::string_view name;
};
// Most specific first: a protocol's own name, then the socket type's (raw), then "".
constexpr std::array<NameBit, 7> kNames = {{{kSockTcp, "tcp"},
                                            {kSockUdp, "udp"},
                                            {kSockIcmp, "icmp"},
                                            {kSockIcmpv6, "icmpv6"},
                                            {kSockSctp, "sctp"},
                                            {kSockRaw, "raw"},
                                            {kSockOther, ""}}};

} // namespace

const std::vector<uint16_t>& socket_name_sets() {
  static const std::vector<uint16_t> sets = {kSockTcp,
                                             kSockUdp,
                                             kSockIcmp,
                                             kSockIcmpv6,
                                             kSockSctp,
                                             kSockRaw,
                                             kSockRaw | kSockIcmp,
                                             kSockRaw | kSockIcmpv6,
                                             kSockOther};
  return sets;
}

std::vector<std::string_view> socket_names(uint16_t set) {
  std::vector<std::string_view> out;
  for (const auto& n : kNames)
    if (set & n.bit) out.push_back(n.name);
  return out;
}

// The same function as names_of() in bpf/cgroupnet.bpf.c (tests compare them).
uint16_t socket_name_set(int family, int type, int protocol) {
  if (family != kAfInet && family != kAfInet6) return 0;
  uint16_t n = 0;
  if (type == kRaw) n |= kSockRaw;
  if (family == kAfInet && protocol == kIcmp && (type == kRaw || type == kDgram)) n |= kSockIcmp;
  if (family == kAfInet6 && protocol == kIcmpv6 && (type == kRaw || type == kDgram))
    n |= kSockIcmpv6;
  if (type == kStream && (protocol == kTcp || protocol == kMptcp)) n |= kSockTcp;
  if (type == kDgram && (protocol == kUdp || protocol == kUdplite)) n |= kSockUdp;
  if ((type == kStream || type == kSeqpacket) && protocol == kSctp) n |= kSockSctp;
  return n != 0 ? n : static_cast<uint16_t>(kSockOther);
}

std::string socket_resource(int family, int type, int protocol) {
  static constexpr std::array<std::string_view, 11> kTypes = {"",           "SOCK_STREAM",
                                                              "SOCK_DGRAM", "SOCK_RAW",
                                                              "SOCK_RDM",   "SOCK_SEQPACKET",
                                                              "SOCK_DCCP",  "",
                                                              "",           "",
                                                              "SOCK_PACKET"};
  const std::string fam = family == kAfInet    ? "AF_INET"
                          : family == kAfInet6 ? "AF_INET6"
                                               : std::to_string(family);
  const std::string typ = type >= 0 && type < static_cast<int>(kTypes.size()) &&
                                  !kTypes[static_cast<size_t>(type)].empty()
                              ? std::string(kTypes[static_cast<size_t>(type)])
                              : std::to_string(type);
  return "domain=" + fam + " type=" + typ + " protocol=" + std::to_string(protocol);
}

Verdict decide_socket(const RuleSet& rs, uint16_t set, std::string_view source) {
  Verdict first, alerting;
  bool have_first = false, have_alerting = false;
  for (const auto name : socket_names(set)) {
    const Verdict v = decide(rs, Access{Category::Network, name, source});
    // Deny wins (an Allow icmp rule does not open raw IPPROTO_ICMP sockets under posture
    // block: with IP_HDRINCL they send any packet). Dry run turned denies into "Audit
    // (Block)" alerts: the first of those reports.
    if (!v.allow || v.action == "Audit (Block)") return v;
    if (v.alert && !have_alerting) alerting = v, have_alerting = true;
    if (!have_first) first = v, have_first = true;
  }
  return have_alerting ? alerting : first;
}

} // namespace corral::policy
