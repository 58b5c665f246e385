// Where a workload's cgroup v2 is (issue 9): the v2 hierarchy's mount, found generically in
// /proc/self/mountinfo (fstype cgroup2; /sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid ones), and the process's path in it (/proc/<pid>/cgroup,
// the "0::" line). A v2 cgroup directory's inode number is the cgroup id
// (kernfs: bpf_get_current_cgroup_id() returns it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace corral::enforce::cgroupnet {

// The mount point of the cgroup v2 hierarchy.
Result<std::string> cgroup2_mount();

// The cgroup v2 directory process `pid` is in.
Result<std::string> cgroup_dir_of(int pid);

// The cgroup id of a v2 cgroup directory.
Result<uint64_t> cgroup_id_of(const std::string& dir);

// Every process (tgid) in `dir` and in the cgroups below it.
std::vector<int> processes_in(const std::string& dir);

} // namespace corral::enforce::cgroupnet
