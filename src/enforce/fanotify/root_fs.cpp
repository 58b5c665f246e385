#include "enforce/fanotify/root_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "enforce/fanotify/proc_reader.h"

namespace corral::enforce::fanotify {

Result<Fd> open_root(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/root";
  Fd fd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  return fd;
}

Result<Fd> open_in_root(int root_fd, std::string_view path, bool no_symlinks) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (no_symlinks ? RESOLVE_NO_SYMLINKS : 0);
  const std::string p(path);
  Fd fd(static_cast<int>(::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how)));
  if (!fd) return errno_error("resolve " + p + " in the workload root");
  return fd;
}

std::optional<FileId> file_id_in_root(int pid, std::string_view path) {
  auto root = open_root(pid);
  if (!root) return std::nullopt;
  return file_id_in_root_fd(root->get(), path);
}

std::optional<FileId> file_id_in_root_fd(int root_fd, std::string_view path) {
  auto fd = open_in_root(root_fd, path);
  struct stat st {};
  if (!fd || ::fstat(fd->get(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

policy::PathResolver root_resolver(int pid) {
  return [pid](const std::string& path) -> std::optional<std::string> {
    auto root = open_root(pid);
    if (!root) return std::nullopt;
    auto fd = open_in_root(root->get(), path);
    if (!fd) return std::nullopt;
    const auto prefix = read_link("/proc/" + std::to_string(pid) + "/root");
    const auto target = read_link("/proc/self/fd/" + std::to_string(fd->get()));
    if (!prefix || !target) return std::nullopt;
    return strip_root(*target, *prefix);
  };
}

} // namespace corral::enforce::fanotify
