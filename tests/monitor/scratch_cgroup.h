// A scratch cgroup v2 directory for the monitor's tests and benchmark: made under the cgroup2
// mount (/proc/self/mountinfo), removed when it goes (after the processes in it exited).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"

namespace corral::testing {

// The cgroup v2 mount point ("/sys/fs/cgroup" or, on a hybrid host, "/sys/fs/cgroup/unified");
// "" when none.
std::string find_cgroup2();

class ScratchCgroup {
public:
  // <cgroup2 mount>/<name>-<our pid>-<n>.
  static Result<std::unique_ptr<ScratchCgroup>> make(const std::string& name);
  ~ScratchCgroup();
  ScratchCgroup(const ScratchCgroup&) = delete;
  ScratchCgroup& operator=(const ScratchCgroup&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  // Its cgroup v2 id: the inode number of its directory (kernfs node id).
  [[nodiscard]] uint64_t id() const { return id_; }
  // "<path>/cgroup.procs": a process that writes "0" there moves itself in. Kept as a string
  // made before fork, so that a child of a threaded parent needs only system calls.
  [[nodiscard]] const std::string& procs() const { return procs_; }

private:
  ScratchCgroup(std::string path, uint64_t id)
      : path_(std::move(path)), procs_(path_ + "/cgroup.procs"), id_(id) {}
  std::string path_;
  std::string procs_;
  uint64_t id_;
};

// In a forked child: moves the calling process into the cgroup whose cgroup.procs is `procs`.
// Only system calls. True on success.
bool enter_cgroup(const char* procs);

} // namespace corral::testing
