// The monitor's view of /proc: the processes that ran before it started, and the odd one
// whose fork it missed. Internal to src/monitor.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "monitor/monitor.h"

namespace corral::monitor {

// A process as /proc/<tgid> shows it now; nullopt when it is gone.
std::optional<Process> from_proc(int tgid);

// argv as NUL-separated strings (/proc/<pid>/cmdline, the exec event), shown space-separated.
std::string args_of(const char* data, size_t len);

} // namespace corral::monitor
