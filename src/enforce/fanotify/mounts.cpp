#include "enforce/fanotify/mounts.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "core/strings.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"

namespace corral::enforce::fanotify {
namespace {

// Mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c).
std::string unescape(std::string_view s) {
  const auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// fanotify refuses permission marks on these (EINVAL: FS_DISALLOW_NOTIFY_PERM, e.g. procfs).
bool refuses_permission_marks(std::string_view fstype) {
  return fstype == "proc";
}

// Mountinfo lists only the mounts reachable from the process's root (fs/proc_namespace.c
// show_mountinfo skips the others), so a process chrooted into a directory inside a mount,
// not at a mount's root, has no "/" line: the mount holding its root is the one every
// access of its tree goes through. That mount instance, reached through the workload's own
// root (never the agent's), belongs to the workload's mount namespace.
bool mark_root_holder(int group_fd, int root_fd, uint64_t mask, std::set<int>& marked_ids,
                      MarkReport& report) {
  const auto id = mount_id_of(root_fd);
  if (!id) return false;
  if (marked_ids.contains(*id)) return true;
  const std::string object = "/proc/self/fd/" + std::to_string(root_fd);
  if (::fanotify_mark(group_fd, FAN_MARK_ADD | FAN_MARK_MOUNT, mask, AT_FDCWD, object.c_str()) !=
      0) {
    report.failed.push_back("/ (mount " + std::to_string(*id) +
                            ", holding the root): " + std::strerror(errno));
    return false;
  }
  marked_ids.insert(*id);
  ++report.marked;
  return true;
}

} // namespace

std::optional<int> mount_id_of(int fd) {
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0 || !(stx.stx_mask & STATX_MNT_ID))
    return std::nullopt;
  return static_cast<int>(stx.stx_mnt_id);
}

std::optional<dev_t> mount_dev(int pid, int mount_id) {
  const auto text = read_proc_file("/proc/" + std::to_string(pid) + "/mountinfo", 256 * 1024);
  if (!text) return std::nullopt;
  for (const auto& m : parse_mountinfo(*text)) {
    if (m.id == mount_id) return m.dev;
  }
  return std::nullopt;
}

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> out;
  for (const auto& line : split(text, '\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super
    const auto f = split(line, ' ');
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 7 || dash + 1 >= f.size()) continue;
    MountEntry e;
    e.id = std::atoi(f[0].c_str());
    e.mount_point = unescape(f[4]);
    unsigned major = 0, minor = 0;
    if (std::sscanf(f[2].c_str(), "%u:%u", &major, &minor) == 2) e.dev = makedev(major, minor);
    e.fstype = f[dash + 1];
    if (e.id > 0 && e.mount_point.starts_with('/')) out.push_back(std::move(e));
  }
  return out;
}

Result<MarkReport> mark_mounts(int group_fd, int pid, uint64_t mask, const std::string& mountinfo) {
  const std::string info_path = "/proc/" + std::to_string(pid) + "/mountinfo";
  const auto text = mountinfo.empty() ? read_proc_file(info_path, kMaxMountinfo) : mountinfo;
  if (!text) return errno_error("read " + info_path);
  auto root = open_root(pid);
  if (!root) return root.error();

  MarkReport report;
  std::set<int> marked_ids;
  bool root_marked = false;
  for (const auto& m : parse_mountinfo(*text)) {
    if (refuses_permission_marks(m.fstype)) {
      report.skipped.push_back(m.mount_point + " (" + m.fstype + ")");
      continue;
    }
    auto fd = open_in_root(root->get(), m.mount_point, /*no_symlinks=*/true);
    if (!fd) {
      report.failed.push_back(m.mount_point + ": " + fd.error().message);
      continue;
    }
    const auto id = mount_id_of(fd->get());
    if (!id || *id != m.id) {
      // Over-mounted (a later mount hides it) or changed since mountinfo was read.
      report.skipped.push_back(m.mount_point + " (mount " + std::to_string(m.id) +
                               " not reachable)");
      continue;
    }
    if (!marked_ids.insert(m.id).second) continue;
    // fanotify_mark() cannot take an O_PATH fd as the object (fdget refuses FMODE_PATH),
    // but the magic link /proc/self/fd/<n> resolves to exactly that mount and dentry.
    const std::string object = "/proc/self/fd/" + std::to_string(fd->get());
    if (::fanotify_mark(group_fd, FAN_MARK_ADD | FAN_MARK_MOUNT, mask, AT_FDCWD, object.c_str()) !=
        0) {
      // The marks limit: a group missing some of the workload's mounts is not built at all.
      if (errno == ENOSPC) {
        return Error{"cannot mark " + m.mount_point + " of pid " + std::to_string(pid) + ": " +
                         std::strerror(errno),
                     kGroupLimitHint, ENOSPC};
      }
      report.failed.push_back(m.mount_point + " (" + m.fstype + "): " + std::strerror(errno));
      continue;
    }
    ++report.marked;
    if (m.mount_point == "/") root_marked = true;
  }
  if (!root_marked) root_marked = mark_root_holder(group_fd, root->get(), mask, marked_ids, report);
  if (!root_marked) {
    return Error{"cannot mark the root mount of pid " + std::to_string(pid) +
                     (report.failed.empty() ? std::string() : ": " + report.failed.front()),
                 "is the process still running, and is the agent root?", 0};
  }
  return report;
}

} // namespace corral::enforce::fanotify
