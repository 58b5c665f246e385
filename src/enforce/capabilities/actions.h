// What the capability programs do with one use (bpf/shared/capabilities.h CORRAL_CAP_*).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace corral::enforce::capabilities {

enum class Action : uint8_t { None = 0, Report = 1, Block = 2 };
constexpr size_t kMaxCaps = 64;
using Actions = std::array<Action, kMaxCaps>; // by capability number

} // namespace corral::enforce::capabilities
