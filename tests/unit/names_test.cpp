// Protocol and capability names (policy/names.h).
#include <gtest/gtest.h>

#include "policy/names.h"

namespace corral::policy {
namespace {

TEST(Names, Protocols) {
  EXPECT_EQ(normalize_protocol("tcp"), "tcp");
  EXPECT_EQ(normalize_protocol(" UDP "), "udp");
  EXPECT_EQ(normalize_protocol("ICMPv6"), "icmpv6");
  EXPECT_EQ(normalize_protocol("Raw"), "raw");
  EXPECT_EQ(normalize_protocol("sctp"), "sctp");
  EXPECT_EQ(normalize_protocol("tcpx"), std::nullopt);
  EXPECT_EQ(normalize_protocol(""), std::nullopt);
  EXPECT_EQ(normalize_protocol("ALL"), "all");
  EXPECT_EQ(protocol_names().size(), 7u);
}

TEST(Names, Capabilities) {
  EXPECT_EQ(normalize_capability("net_raw"), "net_raw");
  EXPECT_EQ(normalize_capability("CAP_NET_RAW"), "net_raw");
  EXPECT_EQ(normalize_capability(" cap_sys_admin "), "sys_admin");
  EXPECT_EQ(normalize_capability("Sys_Ptrace"), "sys_ptrace");
  EXPECT_EQ(normalize_capability("CAP_"), std::nullopt);
  EXPECT_EQ(normalize_capability("cap_cap_net_raw"), std::nullopt);
  EXPECT_EQ(normalize_capability("superpower"), std::nullopt);
}

TEST(Names, CapabilityNumbersFollowTheKernel) {
  // include/uapi/linux/capability.h
  EXPECT_EQ(capability_number("chown"), 0);
  EXPECT_EQ(capability_number("net_bind_service"), 10);
  EXPECT_EQ(capability_number("net_raw"), 13);
  EXPECT_EQ(capability_number("sys_admin"), 21);
  EXPECT_EQ(capability_number("bpf"), 39);
  EXPECT_EQ(capability_number("checkpoint_restore"), 40);
  EXPECT_EQ(capability_number("NET_RAW"), -1); // takes normalised names only
  EXPECT_EQ(capability_number("nope"), -1);
  const auto names = capability_names();
  ASSERT_EQ(names.size(), 41u);
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(capability_number(names[i]), static_cast<int>(i)) << names[i];
    EXPECT_EQ(normalize_capability("CAP_" + std::string(names[i])), std::string(names[i]));
  }
}

} // namespace
} // namespace corral::policy
