// The kernel identity of a running workload, read from /proc/<pid> of its init process.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "workload/workload.h"

namespace corral::workload {

// Sets w.root_path, w.mntns_inode, w.pidns_inode and w.cgroup_id from /proc/<w.init_pid>.
// Fails when the namespaces cannot be read (the process is gone, or no permission); the
// cgroup id is best effort and stays 0 when the process has no cgroup v2 cgroup.
Result<void> fill_process_identity(Workload& w);

// The cgroup v2 id (what bpf_get_current_cgroup_id() returns) of pid's cgroup, or 0.
uint64_t cgroup_v2_id(int pid);

} // namespace corral::workload
