// The file and network events of bpf/shared/monitor.h as the monitor's API has them.
// Internal to src/monitor.
#pragma once

#include <string>

#include <linux/types.h> // the __u32 etc. of the shared header

#include "monitor/monitor.h"
#include "shared/monitor.h"

namespace corral::monitor {

FileAccess file_access(const corral_monitor_file& e);
NetAccess net_access(const corral_monitor_net& e);

// "127.0.0.1", "::1", a unix socket's path ("@name" for an abstract one), "" when none.
std::string printable_address(const corral_monitor_sockaddr& a);

} // namespace corral::monitor
