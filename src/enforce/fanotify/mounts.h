// Marking every mount of a workload's mount namespace (DESIGN.md, fanotify backend): a
// FAN_MARK_MOUNT mark per mount listed in /proc/<pid>/mountinfo, each reached through the
// workload's root so that only that namespace's mount instances are marked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace corral::enforce::fanotify {

struct MountEntry {
  int id = 0;              // mount id (field 1), as statx(STATX_MNT_ID) reports it
  std::string mount_point; // relative to the process's root, octal escapes decoded
  std::string fstype;
};

// Parses /proc/<pid>/mountinfo (proc(5)); malformed lines are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

struct MarkReport {
  size_t marked = 0;
  std::vector<std::string> skipped; // procfs, over-mounted, already marked
  std::vector<std::string> failed;  // "<mount point>: <reason>"
};

// Adds a FAN_MARK_MOUNT mark with `mask` on every mount of pid's mount namespace to
// `group_fd`. Fails when the root mount cannot be marked; other failures are reported.
// Safety: each mount point is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
// from the workload's root, and its mount id must equal the one mountinfo lists, so a
// symlink swapped in by the workload can never lead the mark out to a host mount.
Result<MarkReport> mark_mounts(int group_fd, int pid, uint64_t mask);

} // namespace corral::enforce::fanotify
