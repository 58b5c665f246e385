// Shared by the tries (not part of the library's interface).
#pragma once

#include <string>

#include <linux/bpf.h>

#include "probe/probe.h"

namespace corral::probe {

// For program types whose load takes no expected attach type.
constexpr auto kAnyAttach = static_cast<bpf_attach_type>(0);

// The check, marked failed at `stage` with errno `err`.
Check failed(Check c, const std::string& stage, int err);
// The check, marked working.
Check worked(Check c, std::string message);

// Loads "r0 = ret; exit" as a GPL program of `type`; returns its fd, or -1 with `err` set.
int load(bpf_prog_type type, bpf_attach_type attach, unsigned btf_id, int ret, int& err);

} // namespace corral::probe
