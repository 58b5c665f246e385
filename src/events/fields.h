// One table of an Alert's fields and their KubeArmor names drives every rendering (JSON,
// text, protobuf), so the names are written once.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "events/alert.h"

namespace corral::events {

struct StringField {
  const char* name; // KubeArmor's field name
  std::string Alert::*member;
  bool in_log; // also a field of feeder.Log
};
struct IntField {
  const char* name;
  int32_t Alert::*member;
};

std::span<const StringField> string_fields();
std::span<const IntField> int_fields(); // all int32 fields exist in Alert and Log

} // namespace corral::events
