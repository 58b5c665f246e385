#include "events/format.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include "events/fields.h"

namespace corral::events {
namespace {

// The order `karmor logs` prints first; every other non-empty key follows, sorted.
constexpr std::array<const char*, 20> kTextOrder = {
    "ClusterName",   "HostName",    "NamespaceName",  "PodName",  "Labels",
    "ContainerName", "ContainerID", "ContainerImage", "Type",     "PolicyName",
    "Severity",      "Message",     "Source",         "Resource", "Operation",
    "Action",        "Data",        "EventData",      "Enforcer", "Result"};

} // namespace

nlohmann::ordered_json to_json(const Alert& a) {
  nlohmann::ordered_json j;
  j["Timestamp"] = a.timestamp;
  for (const auto& f : string_fields()) {
    if (!(a.*f.member).empty()) j[f.name] = a.*f.member;
  }
  for (const auto& f : int_fields()) {
    if (a.*f.member != 0) j[f.name] = a.*f.member;
  }
  if (!a.atags.empty()) j["ATags"] = a.atags;
  if (!a.tty.empty()) j["TTY"] = a.tty;
  return j;
}

Alert from_json(const nlohmann::json& j) {
  Alert a;
  a.timestamp = j.value("Timestamp", int64_t{0});
  for (const auto& f : string_fields()) a.*f.member = j.value(f.name, std::string());
  for (const auto& f : int_fields()) a.*f.member = j.value(f.name, int32_t{0});
  a.atags = j.value("ATags", std::vector<std::string>{});
  a.tty = j.value("TTY", std::string());
  return a;
}

std::string to_text(const Alert& a) {
  const auto j = to_json(a);
  std::map<std::string, std::string> values;
  for (const auto& [key, value] : j.items()) {
    if (key == "UpdatedTime" || key == "Timestamp") continue;
    values[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  std::string out =
      std::string("== ") + (a.is_alert() ? "Alert" : "Log") + " / " + a.updated_time + " ==\n";
  for (const char* key : kTextOrder) {
    const auto it = values.find(key);
    if (it == values.end()) continue;
    out += it->first + ": " + it->second + "\n";
    values.erase(it);
  }
  for (const auto& [key, value] : values) out += key + ": " + value + "\n";
  return out;
}

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339_micros(int64_t unix_micros) {
  const time_t secs = static_cast<time_t>(unix_micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(unix_micros % 1000000));
  return std::string(buf, n) + frac;
}

} // namespace corral::events
