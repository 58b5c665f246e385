// The OTLP JSON encoding of a batch (opentelemetry-proto, logs/v1 and common/v1): 64-bit
// integers (timeUnixNano, intValue) are strings as proto3's JSON mapping writes them, enums
// (severityNumber) are numbers, every value is an AnyValue object.
#include <ctime>
#include <map>
#include <tuple>

#include "core/version.h"
#include "events/format.h"
#include "events/otlp.h"

namespace corral::events {
namespace {

using json = nlohmann::json;

// OTel's SeverityNumber values (logs data model).
constexpr int kSeverityInfo = 9;
constexpr int kSeverityWarn = 13;

json string_value(const std::string& s) {
  return {{"stringValue", s}};
}

json key_value(const std::string& key, json value) {
  return {{"key", key}, {"value", std::move(value)}};
}

// Every field format.cpp's JSON has, under the same (KubeArmor's) name.
json record_attributes(const Alert& a) {
  json out = json::array();
  const auto fields = to_json(a); // items() refers to it: not a temporary
  for (const auto& [key, v] : fields.items()) {
    if (v.is_string()) {
      out.push_back(key_value(key, string_value(v.get<std::string>())));
    } else if (v.is_number_integer()) {
      out.push_back(key_value(key, {{"intValue", std::to_string(v.get<int64_t>())}}));
    } else if (v.is_array()) {
      json values = json::array();
      for (const auto& s : v) values.push_back(string_value(s.get<std::string>()));
      out.push_back(key_value(key, {{"arrayValue", {{"values", values}}}}));
    }
  }
  return out;
}

bool is_warning(const Alert& a) {
  return a.is_alert() &&
         (a.action.starts_with("Block") || (!a.result.empty() && a.result != "Passed"));
}

// A short line for viewers that show only the body; the attributes hold every field.
std::string body(const Alert& a) {
  std::string s = a.is_alert() ? a.policy_name + ": " + a.action + " " : a.type + ": ";
  s += a.operation + " " + a.resource;
  if (!a.result.empty()) s += " (" + a.result + ")";
  if (!a.message.empty()) s += " - " + a.message;
  return s;
}

json log_record(const Alert& a, uint64_t observed) {
  const bool warn = is_warning(a);
  json r;
  r["timeUnixNano"] = std::to_string(otlp_time_unix_nanos(a));
  r["observedTimeUnixNano"] = std::to_string(observed);
  r["severityNumber"] = warn ? kSeverityWarn : kSeverityInfo;
  r["severityText"] = warn ? "WARN" : "INFO";
  r["body"] = string_value(body(a));
  r["attributes"] = record_attributes(a);
  return r;
}

// OTel's semantic conventions (resource: host, k8s, container); empty ones are left out.
json resource(const Alert& a, const OtlpIdentity& id) {
  json attrs = json::array();
  const auto add = [&](const char* key, const std::string& v) {
    if (!v.empty()) attrs.push_back(key_value(key, string_value(v)));
  };
  add("service.name", id.service_name);
  add("host.name", a.host_name.empty() ? id.host_name : a.host_name);
  add("k8s.cluster.name", a.cluster_name.empty() ? id.cluster_name : a.cluster_name);
  add("k8s.namespace.name", a.namespace_name);
  add("k8s.pod.name", a.pod_name);
  add("k8s.container.name", a.container_name);
  add("container.id", a.container_id);
  add("container.image.name", a.container_image);
  return {{"attributes", attrs}};
}

} // namespace

uint64_t otlp_time_unix_nanos(const Alert& a) {
  std::tm tm{};
  int micros = 0;
  // "2026-11-30T21:10:37.123456Z" (format.cpp's rfc3339_micros)
  if (std::sscanf(a.updated_time.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) == 7) {
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const time_t secs = timegm(&tm);
    if (secs >= 0)
      return static_cast<uint64_t>(secs) * 1000000000ULL + static_cast<uint64_t>(micros) * 1000ULL;
  }
  return a.timestamp > 0 ? static_cast<uint64_t>(a.timestamp) * 1000000000ULL : 0;
}

json otlp_logs_request(std::span<const Alert> batch, const OtlpIdentity& identity,
                       uint64_t observed_unix_nanos) {
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string,
                         std::string, std::string>;
  std::map<Key, size_t> index; // resource -> its place in resourceLogs
  json resource_logs = json::array();
  for (const auto& a : batch) {
    const Key key{a.host_name,      a.cluster_name, a.namespace_name, a.pod_name,
                  a.container_name, a.container_id, a.container_image};
    auto [it, fresh] = index.try_emplace(key, resource_logs.size());
    if (fresh) {
      json scope_logs = json::object();
      scope_logs["scope"] = {{"name", "corral"}, {"version", kVersion}};
      scope_logs["logRecords"] = json::array();
      json entry = json::object();
      entry["resource"] = resource(a, identity);
      entry["scopeLogs"] = json::array();
      entry["scopeLogs"].push_back(std::move(scope_logs));
      resource_logs.push_back(std::move(entry));
    }
    resource_logs[it->second]["scopeLogs"][0]["logRecords"].push_back(
        log_record(a, observed_unix_nanos));
  }
  return {{"resourceLogs", resource_logs}};
}

std::string otlp_logs_body(std::span<const Alert> batch, const OtlpIdentity& identity,
                           uint64_t observed_unix_nanos) {
  return otlp_logs_request(batch, identity, observed_unix_nanos)
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace corral::events
