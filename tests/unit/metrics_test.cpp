// agent/metrics.h: the Prometheus text exposition of the agent's metrics, and the latency
// histogram (core/histogram.h) it renders.
#include <chrono>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "agent/metrics.h"

namespace corral::agent::metrics {
namespace {

using std::chrono::microseconds;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines(text))
    if (l == line) return true;
  return false;
}

Snapshot sample_snapshot() {
  Snapshot s;
  s.events = {{"MatchedPolicy", "Process", "Block", 3}, {"ContainerLog", "File", "Allow", 7}};
  s.enforcer = true;
  s.permission_answered = 42;
  s.permission_denied = 3;
  s.errors_allowed = 1;
  s.timeouts_denied = 2;
  s.monitor_dropped = {{"exec", 5}, {"file", 0}};
  s.alerts_evicted = 4;
  s.workloads = 2;
  s.workloads_enforced = 1;
  s.policies = 1;
  return s;
}

TEST(Metrics, CountersGaugesAndTheirFamilies) {
  const auto text = render(sample_snapshot());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_TRUE(has_line(text, "# TYPE corral_events_total counter"));
  EXPECT_TRUE(has_line(
      text, R"(corral_events_total{type="MatchedPolicy",operation="Process",action="Block"} 3)"));
  EXPECT_TRUE(has_line(
      text, R"(corral_events_total{type="ContainerLog",operation="File",action="Allow"} 7)"));
  EXPECT_TRUE(has_line(text, "corral_permission_events_answered_total 42"));
  EXPECT_TRUE(has_line(text, "corral_permission_events_denied_total 3"));
  EXPECT_TRUE(has_line(text, R"(corral_permission_events_on_error_total{verdict="allow"} 1)"));
  EXPECT_TRUE(has_line(text, R"(corral_permission_events_timed_out_total{verdict="deny"} 2)"));
  EXPECT_TRUE(has_line(text, R"(corral_monitor_dropped_total{kind="exec"} 5)"));
  EXPECT_TRUE(has_line(text, R"(corral_events_evicted_total{ring="alerts"} 4)"));
  EXPECT_TRUE(has_line(text, "# TYPE corral_workloads gauge"));
  EXPECT_TRUE(has_line(text, "corral_workloads 2"));
  EXPECT_TRUE(has_line(text, "corral_workloads_enforced 1"));
  EXPECT_TRUE(has_line(text, "corral_policies 1"));
  EXPECT_TRUE(has_line(text, "corral_kubernetes_watch_restarts_total 0"));
}

// Every sample follows its family's HELP and TYPE; every family appears once; counters end in
// _total.
TEST(Metrics, EveryFamilyOnceWithHelpAndType) {
  const auto text = render(sample_snapshot());
  std::map<std::string, std::string> types; // family -> type
  std::string current;
  std::string last_help;
  for (const auto& l : lines(text)) {
    if (l.starts_with("# HELP ")) {
      last_help = l.substr(7, l.find(' ', 7) - 7);
      continue;
    }
    if (l.starts_with("# TYPE ")) {
      const auto name = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_EQ(name, last_help) << "TYPE without HELP just before: " << l;
      EXPECT_EQ(types.count(name), 0U) << "family twice: " << name;
      types[name] = l.substr(l.rfind(' ') + 1);
      if (types[name] == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << name;
      }
      current = name;
      continue;
    }
    const auto name = l.substr(0, l.find_first_of("{ "));
    EXPECT_TRUE(name == current || name.starts_with(current + "_")) << l;
  }
  EXPECT_EQ(types["corral_permission_decision_seconds"], "histogram");
}

TEST(Metrics, NoPermissionFamiliesWithoutAnEnforcer) {
  Snapshot s;
  const auto text = render(s);
  EXPECT_EQ(text.find("corral_permission_"), std::string::npos);
  EXPECT_EQ(text.find("corral_monitor_dropped_total"), std::string::npos);
  EXPECT_TRUE(has_line(text, "corral_workloads 0"));
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(escape_label_value("x\ny"), R"(x\ny)");
  Snapshot s;
  s.events = {{"Matched\"Policy", "Pro\\cess", "Bl\nock", 1}};
  EXPECT_TRUE(has_line(
      render(s),
      R"(corral_events_total{type="Matched\"Policy",operation="Pro\\cess",action="Bl\nock"} 1)"));
}

TEST(Metrics, EventCountsByTypeOperationAction) {
  EventCounts c;
  events::Alert a;
  a.type = "MatchedPolicy";
  a.operation = "Process";
  a.action = "Block";
  c.count(a);
  c.count(a);
  a.action = "Audit";
  c.count(a);
  const auto rows = c.rows();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].action, "Block");
  EXPECT_EQ(rows[0].count, 2U);
  EXPECT_EQ(rows[1].action, "Audit");
  EXPECT_EQ(rows[1].count, 1U);
}

TEST(Metrics, HistogramIsCumulativeWithInfEqualToCount) {
  LatencyHistogram h;
  h.observe(microseconds(5));       // <= 10µs
  h.observe(microseconds(10));      // <= 10µs (le is inclusive)
  h.observe(microseconds(30));      // <= 50µs
  h.observe(microseconds(200'000)); // beyond 100 ms: +Inf only
  Snapshot s;
  s.enforcer = true;
  s.decision_latency = h.snapshot();
  EXPECT_EQ(s.decision_latency.count, 4U);
  EXPECT_EQ(s.decision_latency.sum_ns, 200'045'000U);
  const auto text = render(s);
  EXPECT_TRUE(has_line(text, R"(corral_permission_decision_seconds_bucket{le="1e-05"} 2)"));
  EXPECT_TRUE(has_line(text, R"(corral_permission_decision_seconds_bucket{le="2.5e-05"} 2)"));
  EXPECT_TRUE(has_line(text, R"(corral_permission_decision_seconds_bucket{le="5e-05"} 3)"));
  EXPECT_TRUE(has_line(text, R"(corral_permission_decision_seconds_bucket{le="0.1"} 3)"));
  EXPECT_TRUE(has_line(text, R"(corral_permission_decision_seconds_bucket{le="+Inf"} 4)"));
  EXPECT_TRUE(has_line(text, "corral_permission_decision_seconds_count 4"));
  EXPECT_TRUE(has_line(text, "corral_permission_decision_seconds_sum 0.200045"));
  // Cumulative: never decreasing, in the order of the bounds.
  uint64_t prev = 0;
  size_t buckets = 0;
  for (const auto& l : lines(text)) {
    if (!l.starts_with("corral_permission_decision_seconds_bucket")) continue;
    const uint64_t v = std::stoull(l.substr(l.rfind(' ') + 1));
    EXPECT_GE(v, prev) << l;
    prev = v;
    ++buckets;
  }
  EXPECT_EQ(buckets, LatencyHistogram::kBuckets);
}

} // namespace
} // namespace corral::agent::metrics
