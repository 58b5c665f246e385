// probe::decide(): what `--enforcer auto` picks from the checks, on kernels other than this
// machine's (the JSON test covers this one with real tries).
#include <gtest/gtest.h>

#include "probe/probe.h"

namespace corral::probe {
namespace {

using R = Check::Result;

Report report(std::initializer_list<std::pair<const char*, R>> results,
              std::vector<std::string> lsm = {"lockdown", "capability", "bpf"}) {
  Report r;
  r.root = true;
  r.kernel.lsm.active = std::move(lsm);
  for (const auto& [id, res] : results) {
    Check c{.id = id, .title = id, .result = res};
    c.message = res == R::Fails ? "load: EPERM (Operation not permitted)" : "ok";
    r.checks.push_back(c);
  }
  decide(r);
  return r;
}

const Pick& pick(const Report& r, const std::string& category) {
  for (const auto& p : r.picks) {
    if (p.category == category) return p;
  }
  throw std::runtime_error("no pick for " + category);
}

TEST(ProbeDecide, ThisMachineShape) {
  const auto r = report({{"fanotify_perm", R::Works},
                         {"cgroup_bpf", R::Works},
                         {"bpf_lsm", R::Fails},
                         {"fmod_ret", R::Fails},
                         {"tp_btf_cap", R::Works},
                         {"kprobe", R::Fails}});
  EXPECT_EQ(pick(r, "process").enforcer, "fanotify");
  EXPECT_EQ(pick(r, "file").coverage, "enforced");
  EXPECT_EQ(pick(r, "network").enforcer, "cgroup-bpf");
  EXPECT_EQ(pick(r, "capabilities").enforcer, "tp_btf cap_capable (audit only)");
  EXPECT_EQ(pick(r, "capabilities").coverage, "audited only");
  ASSERT_EQ(r.notes.size(), 1U);
  EXPECT_NE(r.notes[0].find("bpf is in the active LSM list"), std::string::npos);
}

TEST(ProbeDecide, CapabilitiesLadder) {
  EXPECT_EQ(pick(report({{"bpf_lsm", R::Works}, {"fmod_ret", R::Works}}), "capabilities").enforcer,
            "bpf-lsm");
  EXPECT_EQ(pick(report({{"bpf_lsm", R::Fails}, {"fmod_ret", R::Works}}), "capabilities").coverage,
            "enforced");
  const auto kp = report({{"bpf_lsm", R::Fails}, {"fmod_ret", R::Fails}, {"kprobe", R::Works}});
  EXPECT_EQ(pick(kp, "capabilities").enforcer, "kprobe cap_capable (audit only)");
  EXPECT_EQ(pick(kp, "capabilities").coverage, "audited only");
  const auto none = report({{"bpf_lsm", R::Fails}, {"fmod_ret", R::Fails}, {"kprobe", R::Fails}});
  EXPECT_EQ(pick(none, "capabilities").enforcer, "none");
  EXPECT_EQ(pick(none, "capabilities").coverage, "unsupported");
}

TEST(ProbeDecide, NothingWorks) {
  const auto r = report({{"fanotify_perm", R::Fails}, {"cgroup_bpf", R::Fails}});
  EXPECT_EQ(pick(r, "process").coverage, "unsupported");
  EXPECT_NE(pick(r, "process").reason.find("EPERM"), std::string::npos);
  EXPECT_EQ(pick(r, "network").enforcer, "none");
}

TEST(ProbeDecide, NotRootClaimsNothing) {
  auto r = report(
      {{"fanotify_perm", R::NeedsRoot}, {"cgroup_bpf", R::NeedsRoot}, {"bpf_lsm", R::NeedsRoot}},
      {});
  r.root = false;
  decide(r);
  for (const auto& p : r.picks) EXPECT_EQ(p.coverage, "unknown") << p.category;
  ASSERT_EQ(r.notes.size(), 1U);
  EXPECT_NE(r.notes[0].find("needs root"), std::string::npos);
}

TEST(ProbeDecide, BpfNotListed) {
  const auto r = report({{"bpf_lsm", R::Fails}}, {"lockdown", "capability", "apparmor"});
  ASSERT_EQ(r.notes.size(), 1U);
  EXPECT_NE(r.notes[0].find("not in the active LSM list"), std::string::npos);
}

} // namespace
} // namespace corral::probe
