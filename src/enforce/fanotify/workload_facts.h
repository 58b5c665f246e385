// Facts about a running workload that its tasks cannot change: its cgroup v2 (the exec
// backstop's workload identity — a task can create mount and user namespaces, never leave
// its cgroup) and when it started (files changed later are not the image's own).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace corral::enforce::fanotify {

// The cgroup v2 id (the cgroup directory's inode) of process `pid`. Fails, saying why, when
// the cgroup v2 hierarchy is not mounted or the cgroup is the agent's own or one of its
// ancestors (listing it would judge the agent and the host's processes).
std::optional<uint64_t> workload_cgroup_id(int pid, std::string* why);

// When process `pid` started, in CLOCK_REALTIME nanoseconds, rounded up to the clock tick
// (/proc/<pid>/stat counts ticks since boot).
std::optional<uint64_t> process_start_ns(int pid);

// A file's ctime in nanoseconds.
inline uint64_t ctime_ns(int64_t sec, long nsec) {
  return static_cast<uint64_t>(sec) * 1000000000ULL + static_cast<uint64_t>(nsec);
}

} // namespace corral::enforce::fanotify
