// Marking every mount of a workload's mount namespace (DESIGN.md, fanotify backend): a
// FAN_MARK_MOUNT mark per mount listed in /proc/<pid>/mountinfo, each reached through the
// workload's root so that only that namespace's mount instances are marked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "core/result.h"

namespace corral::enforce::fanotify {

// Why fanotify_init or a mark fails with EMFILE/ENOSPC on a busy node, and what to do.
inline constexpr const char* kGroupLimitHint =
    "the kernel's fanotify limits (fs.fanotify.max_user_groups, max_user_marks) or the agent's "
    "open-files limit are reached: corrald raises them at start to fit --max-workloads (see "
    "`corral get status`); raise that flag, or the limits on the node if /proc/sys is read-only";

struct MountEntry {
  int id = 0;              // mount id (field 1), as statx(STATX_MNT_ID) reports it
  std::string mount_point; // relative to the process's root, octal escapes decoded
  std::string fstype;
  dev_t dev = 0; // the superblock's device (field 3, major:minor), as the kernel holds it
};

// Parses /proc/<pid>/mountinfo (proc(5)); malformed lines are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// The mount id of an open file (statx STATX_MNT_ID).
std::optional<int> mount_id_of(int fd);
// The superblock device of mount `mount_id` as /proc/<pid>/mountinfo lists it.
std::optional<dev_t> mount_dev(int pid, int mount_id);

struct MarkReport {
  size_t marked = 0;
  std::vector<std::string> skipped; // procfs, over-mounted, already marked
  std::vector<std::string> failed;  // "<mount point>: <reason>"
};

// Adds a FAN_MARK_MOUNT mark with `mask` on every mount of pid's mount namespace to
// `group_fd`, and on the mount holding pid's root when that root is a directory inside a
// mount (a chroot into a subdirectory: mountinfo then lists no "/"). Fails when the root's
// mount cannot be marked; other failures are reported.
// Safety: each mount point is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
// from the workload's root, and its mount id must equal the one mountinfo lists, so a
// symlink swapped in by the workload can never lead the mark out to a host mount.
// `mountinfo`: the pid's mountinfo if the caller has just read it ("" reads it here).
Result<MarkReport> mark_mounts(int group_fd, int pid, uint64_t mask,
                               const std::string& mountinfo = "");
// The most of a mountinfo that is read (a workload with more mounts is refused).
inline constexpr size_t kMaxMountinfo = 4 * 1024 * 1024;

} // namespace corral::enforce::fanotify
