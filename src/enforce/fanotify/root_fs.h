// Reaching files of a workload without opening them: O_PATH descriptors resolved inside
// the workload's root. An O_PATH open never produces a fanotify event (fs/open.c
// do_dentry_open returns before fsnotify_open_perm for O_PATH), which is what lets the
// agent's own threads look at marked mounts without waiting for their own verdict.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <sys/stat.h>

#include "core/fd.h"
#include "core/result.h"
#include "policy/ruleset.h"

namespace corral::enforce::fanotify {

// An O_PATH descriptor of the root directory of process `pid` (/proc/<pid>/root).
Result<Fd> open_root(int pid);

// An O_PATH descriptor of `path` resolved with `root_fd` as '/' (openat2 RESOLVE_IN_ROOT:
// absolute symlinks and ".." stay inside). `no_symlinks` refuses any symlink on the way.
Result<Fd> open_in_root(int root_fd, std::string_view path, bool no_symlinks = false);

// The identity of a file: (device, inode).
using FileId = std::pair<dev_t, ino_t>;
std::optional<FileId> file_id_in_root(int pid, std::string_view path);
// The same with the root already open (open_root): for many paths of one workload.
std::optional<FileId> file_id_in_root_fd(int root_fd, std::string_view path);

// The canonical path of `path` inside the root of `pid`, as the kernel reports paths of
// that workload (symlinks followed there), for policy::compile's PathResolver.
policy::PathResolver root_resolver(int pid);

} // namespace corral::enforce::fanotify
