// The agent's view of cgroups is the node's, also where its container has a cgroup namespace
// of its own: the CRI gives one to a container that is not privileged on a cgroup v2-only
// node. In it, /proc/<pid>/cgroup shows other containers' cgroups relative to the agent's
// own ("/../<path>"), which do not resolve under the mounted /sys/fs/cgroup, so the exec
// backstop would know no workload by its cgroup.
#pragma once

#include <string>

#include "core/result.h"

namespace corral::agent {

// Joins the cgroup namespace of containerd, the process listening on `containerd_socket`
// (its pid from SO_PEERCRED: the agent shares the node's pid namespace, hostPID), when the
// calling thread's differs; that of /proc/1 when containerd does not answer. Call before any
// thread is started: setns applies to the calling thread, threads started later inherit it.
// Needs CAP_SYS_ADMIN and SYS_PTRACE (another process's /proc/<pid>/ns). Returns what it did,
// a line for the log, or why it could not.
Result<std::string> join_host_cgroup_namespace(const std::string& containerd_socket);

} // namespace corral::agent
