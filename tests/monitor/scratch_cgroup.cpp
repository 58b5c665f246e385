#include "scratch_cgroup.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe/probe.h"

namespace corral::testing {

std::string find_cgroup2() {
  return probe::find_cgroup2(nullptr);
}

Result<std::unique_ptr<ScratchCgroup>> ScratchCgroup::make(const std::string& name) {
  const std::string root = find_cgroup2();
  if (root.empty()) return Error{"no cgroup v2 hierarchy is mounted (/proc/self/mountinfo)", ""};
  static std::atomic<int> n{0};
  const std::string path =
      root + "/" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  if (::mkdir(path.c_str(), 0755) != 0) return errno_error("mkdir " + path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    auto e = errno_error("stat " + path);
    ::rmdir(path.c_str());
    return e;
  }
  return std::unique_ptr<ScratchCgroup>(new ScratchCgroup(path, st.st_ino));
}

ScratchCgroup::~ScratchCgroup() {
  // A child that was just reaped may keep the cgroup busy for a moment.
  for (int i = 0; i < 100 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

bool enter_cgroup(const char* procs) {
  const int fd = ::open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, "0", 1) == 1;
  ::close(fd);
  return ok;
}

} // namespace corral::testing
