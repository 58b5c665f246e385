// policy/network.h: which names a socket answers to, and the socket's verdict (deny wins).
#include <gtest/gtest.h>

#include "policy/network.h"
#include "policy/parser.h"
#include "test_util.h"

namespace corral::policy {
namespace {

constexpr int kInet = 2, kInet6 = 10, kStream = 1, kDgram = 2, kRaw = 3;

std::shared_ptr<const RuleSet> rules(std::string_view network, Posture posture,
                                     bool dry_run = false) {
  static std::vector<ParseResult> keep; // the RuleSet points into the parsed policies
  keep.push_back(parse_policies(testing::policy_with(network), testing::kFile));
  EXPECT_TRUE(keep.back().ok()) << testing::dump(keep.back());
  Settings s;
  s.postures.network = posture;
  s.dry_run = dry_run;
  Workload w;
  w.labels = {{"app", "nginx"}};
  return compile(keep.back().policies, w, s);
}

TEST(NetworkNames, SocketsAnswerToTheirNames) {
  EXPECT_EQ(socket_name_set(kInet, kStream, 6), kSockTcp);
  EXPECT_EQ(socket_name_set(kInet6, kStream, 262), kSockTcp); // MPTCP is tcp
  EXPECT_EQ(socket_name_set(kInet, kDgram, 17), kSockUdp);
  EXPECT_EQ(socket_name_set(kInet, kDgram, 1), kSockIcmp); // ping socket
  EXPECT_EQ(socket_name_set(kInet, kRaw, 1), kSockRaw | kSockIcmp);
  EXPECT_EQ(socket_name_set(kInet6, kRaw, 58), kSockRaw | kSockIcmpv6);
  EXPECT_EQ(socket_name_set(kInet, kRaw, 6), kSockRaw); // raw tcp is only raw
  EXPECT_EQ(socket_name_set(kInet, kStream, 132), kSockSctp);
  EXPECT_EQ(socket_name_set(1, kStream, 0), 0); // AF_UNIX: not judged
  EXPECT_EQ(socket_name_set(16, kRaw, 0), 0);   // AF_NETLINK
  for (const auto set : socket_name_sets()) EXPECT_FALSE(socket_names(set).empty());
  EXPECT_EQ(socket_resource(kInet, kRaw, 1), "domain=AF_INET type=SOCK_RAW protocol=1");
}

TEST(NetworkVerdict, DenyWinsAcrossNames) {
  const auto block_raw = rules(R"(  network:
    matchProtocols:
    - protocol: raw
  action: Block
)",
                               Posture::Audit);
  EXPECT_FALSE(decide_socket(*block_raw, kSockRaw | kSockIcmp, "").allow);
  EXPECT_TRUE(decide_socket(*block_raw, kSockIcmp, "").allow);
  EXPECT_TRUE(decide_socket(*block_raw, kSockTcp, "").allow);

  const auto allow_icmp = rules(R"(  network:
    matchProtocols:
    - protocol: icmp
  action: Allow
)",
                                Posture::Block);
  EXPECT_TRUE(decide_socket(*allow_icmp, kSockIcmp, "").allow); // ping socket
  const auto raw = decide_socket(*allow_icmp, kSockRaw | kSockIcmp, "");
  EXPECT_FALSE(raw.allow); // raw falls to posture block
  EXPECT_EQ(raw.policy_name(), "DefaultPosture");
  EXPECT_FALSE(decide_socket(*allow_icmp, kSockOther, "").allow);
}

TEST(NetworkVerdict, FromSourceAuditAndDryRun) {
  const std::string_view tcp_from_bash = R"(  network:
    matchProtocols:
    - protocol: tcp
      fromSource:
      - path: /usr/bin/bash
  action: Allow
)";
  const auto rs = rules(tcp_from_bash, Posture::Block);
  EXPECT_TRUE(decide_socket(*rs, kSockTcp, "/usr/bin/bash").allow);
  const auto other = decide_socket(*rs, kSockTcp, "");
  EXPECT_FALSE(other.allow);
  EXPECT_TRUE(other.alert);
  const auto audit = decide_socket(*rules(tcp_from_bash, Posture::Audit), kSockUdp, "");
  EXPECT_TRUE(audit.allow);
  EXPECT_EQ(audit.action, "Audit");
  const auto dry = decide_socket(*rules(tcp_from_bash, Posture::Block, true), kSockUdp, "");
  EXPECT_TRUE(dry.allow);
  EXPECT_EQ(dry.action, "Audit (Block)");
}

} // namespace
} // namespace corral::policy
