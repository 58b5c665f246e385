// Renderings of events: JSON with KubeArmor's field names (one object per line) and the
// text blocks `karmor logs` prints (KUBEARMOR-WIRE.md "Text rendering").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "events/alert.h"

namespace corral::events {

nlohmann::ordered_json to_json(const Alert& a); // empty strings and zero ids omitted
Alert from_json(const nlohmann::json& j);
std::string to_text(const Alert& a);

// "2026-11-28T19:55:01.123456Z" for a time in microseconds since the epoch.
std::string rfc3339_micros(int64_t unix_micros);
// The realtime clock in microseconds since the epoch (events' Timestamp and UpdatedTime).
int64_t now_micros();

} // namespace corral::events
