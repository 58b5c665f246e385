// The OTLP JSON encoding of a batch (events/otlp.h): resources grouped by workload, values
// as OTLP's AnyValue with proto3's JSON types; endpoint validation; the exporter's bounds.
#include <gtest/gtest.h>

#include "events/otlp.h"

namespace corral::events {
namespace {

using json = nlohmann::json;

Alert denial(const std::string& pod, const std::string& container) {
  Alert a;
  a.timestamp = 1764536400;
  a.updated_time = "2025-11-30T21:00:00.123456Z";
  a.host_name = "node-1";
  a.cluster_name = "prod";
  a.namespace_name = "shop";
  a.pod_name = pod;
  a.container_name = container;
  a.container_id = container + "-id";
  a.pid = 42;
  a.policy_name = "block-id";
  a.severity = "5";
  a.atags = {"MITRE", "T1059"};
  a.type = "MatchedPolicy";
  a.operation = "Process";
  a.resource = "/usr/bin/id";
  a.action = "Block";
  a.result = "Permission denied";
  return a;
}

// The value of attribute `key` in an OTLP KeyValue list, or null.
json attribute(const json& list, const std::string& key) {
  for (const auto& kv : list)
    if (kv.at("key") == key) return kv.at("value");
  return nullptr;
}

TEST(OtlpJson, GroupsRecordsByResource) {
  Alert log = denial("web", "app");
  log.policy_name.clear();
  log.action.clear();
  log.result = "Passed";
  log.type = "ContainerLog";
  const std::vector<Alert> batch = {denial("web", "app"), denial("db", "pg"), log};
  const json req = otlp_logs_request(batch, {"corral", "fallback-host", "fallback"}, 7);
  ASSERT_EQ(req.at("resourceLogs").size(), 2U);
  const json& web = req["resourceLogs"][0];
  const json& res = web.at("resource").at("attributes");
  EXPECT_EQ(attribute(res, "service.name"), json({{"stringValue", "corral"}}));
  EXPECT_EQ(attribute(res, "host.name"), json({{"stringValue", "node-1"}}));
  EXPECT_EQ(attribute(res, "k8s.cluster.name"), json({{"stringValue", "prod"}}));
  EXPECT_EQ(attribute(res, "k8s.namespace.name"), json({{"stringValue", "shop"}}));
  EXPECT_EQ(attribute(res, "k8s.pod.name"), json({{"stringValue", "web"}}));
  EXPECT_EQ(attribute(res, "k8s.container.name"), json({{"stringValue", "app"}}));
  EXPECT_EQ(attribute(res, "container.id"), json({{"stringValue", "app-id"}}));
  ASSERT_EQ(web.at("scopeLogs").size(), 1U);
  EXPECT_EQ(web["scopeLogs"][0]["scope"]["name"], "corral");
  const json& records = web["scopeLogs"][0].at("logRecords");
  ASSERT_EQ(records.size(), 2U); // the alert and the log of the same container
  EXPECT_EQ(attribute(req["resourceLogs"][1]["resource"]["attributes"], "k8s.pod.name"),
            json({{"stringValue", "db"}}));
  EXPECT_EQ(req["resourceLogs"][1]["scopeLogs"][0]["logRecords"].size(), 1U);

  EXPECT_EQ(records[0]["severityNumber"], 13);
  EXPECT_EQ(records[0]["severityText"], "WARN");
  EXPECT_EQ(records[1]["severityNumber"], 9);
  EXPECT_EQ(records[1]["severityText"], "INFO");
}

TEST(OtlpJson, ValueTypesFollowTheJsonEncoding) {
  const std::vector<Alert> batch = {denial("web", "app")};
  const json r = otlp_logs_request(
      batch, {}, 1764536401000000000ULL)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
  // fixed64 and int64 are strings in proto3's JSON mapping; enums are numbers.
  EXPECT_EQ(r.at("timeUnixNano"), "1764536400123456000");
  EXPECT_EQ(r.at("observedTimeUnixNano"), "1764536401000000000");
  EXPECT_TRUE(r.at("severityNumber").is_number_integer());
  EXPECT_TRUE(r.at("body").at("stringValue").is_string());
  const json& attrs = r.at("attributes");
  EXPECT_EQ(attribute(attrs, "PolicyName"), json({{"stringValue", "block-id"}}));
  EXPECT_EQ(attribute(attrs, "Operation"), json({{"stringValue", "Process"}}));
  EXPECT_EQ(attribute(attrs, "Resource"), json({{"stringValue", "/usr/bin/id"}}));
  EXPECT_EQ(attribute(attrs, "Action"), json({{"stringValue", "Block"}}));
  EXPECT_EQ(attribute(attrs, "Result"), json({{"stringValue", "Permission denied"}}));
  EXPECT_EQ(attribute(attrs, "PID"), json({{"intValue", "42"}}));
  EXPECT_EQ(attribute(attrs, "Timestamp"), json({{"intValue", "1764536400"}}));
  EXPECT_EQ(attribute(attrs, "ATags"),
            json::parse(R"({"arrayValue":{"values":[{"stringValue":"MITRE"},)"
                        R"({"stringValue":"T1059"}]}})"));
  EXPECT_TRUE(attribute(attrs, "Cwd").is_null()); // empty fields are left out
  EXPECT_TRUE(attribute(attrs, "UID").is_null());
  for (const auto& kv : attrs) ASSERT_EQ(kv.at("value").size(), 1U) << kv.dump();
}

TEST(OtlpJson, BytesThatAreNotUtf8AreReplaced) {
  Alert a = denial("web", "app");
  a.source = "/bin/echo \xff\xfe";
  const std::vector<Alert> batch = {a};
  const std::string body = otlp_logs_body(batch, {}, 1); // no exception
  const json r = json::parse(body)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
  EXPECT_EQ(attribute(r["attributes"], "Source")["stringValue"], "/bin/echo \uFFFD\uFFFD");
}

TEST(OtlpJson, TimeFallsBackToTimestamp) {
  Alert a;
  a.timestamp = 12;
  EXPECT_EQ(otlp_time_unix_nanos(a), 12000000000ULL);
  a.updated_time = "1970-01-01T00:00:01.000002Z";
  EXPECT_EQ(otlp_time_unix_nanos(a), 1000002000ULL);
}

TEST(OtlpUrl, BaseEndpointsGetV1Logs) {
  EXPECT_EQ(*otlp_logs_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/logs");
  EXPECT_EQ(*otlp_logs_url("https://collector:4318/"), "https://collector:4318/v1/logs");
  EXPECT_EQ(*otlp_logs_url("http://c:4318/custom/logs"), "http://c:4318/custom/logs");
  for (const char* bad : {"ftp://x", "not a url", "", "http://"}) {
    const auto r = otlp_logs_url(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().hint.find("http"), std::string::npos) << bad;
  }
  EXPECT_NE(otlp_logs_url("ftp://x").error().message.find("scheme is ftp"), std::string::npos);
}

TEST(OtlpExporter, BoundedBufferAndBoundedStop) {
  OtlpExporter::Options o;
  o.endpoint = "http://127.0.0.1:1"; // nothing listens: every request fails, is retried
  o.buffer_capacity = 3;
  o.max_batch = 2;
  o.flush_interval = std::chrono::milliseconds(10);
  o.shutdown_timeout = std::chrono::milliseconds(300);
  auto e = OtlpExporter::start(o);
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  const auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) (*e)->offer(denial("web", "app"));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(100));
  (*e)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(3));
  const auto st = (*e)->stats();
  EXPECT_EQ(st.exported, 0U);
  EXPECT_EQ(st.dropped, 100U); // every event is counted: at the buffer or left at stop
  EXPECT_GE(st.failed_requests, 1U);
}

} // namespace
} // namespace corral::events
