#include "enforce/cgroupnet/cgroup_v2.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

namespace corral::enforce::cgroupnet {

Result<std::string> cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return errno_error("read /proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "36 25 0:31 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw,..."
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mount_point;
    head >> id >> parent >> devno >> root >> mount_point;
    if (root == "/") return mount_point;
  }
  return Error{"no cgroup v2 hierarchy is mounted (no cgroup2 line in /proc/self/mountinfo)",
               "mount one: mount -t cgroup2 none /sys/fs/cgroup/unified", 0};
}

Result<std::string> cgroup_dir_of(int pid) {
  auto mount = cgroup2_mount();
  if (!mount) return mount.error();
  const std::string file = "/proc/" + std::to_string(pid) + "/cgroup";
  std::ifstream in(file);
  if (!in) return errno_error("read " + file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("0::")) {
      const std::string path = line.substr(3);
      return *mount + (path == "/" ? "" : path);
    }
  }
  return Error{file + " has no cgroup v2 line (0::)", "", 0};
}

Result<uint64_t> cgroup_id_of(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errno_error("stat " + dir);
  return static_cast<uint64_t>(st.st_ino);
}

std::vector<int> processes_in(const std::string& dir) {
  std::vector<int> out;
  auto read_procs = [&out](const std::filesystem::path& d) {
    std::ifstream in(d / "cgroup.procs");
    int pid = 0;
    while (in >> pid) out.push_back(pid);
  };
  std::error_code ec;
  read_procs(dir);
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_directory(ec)) read_procs(it->path());
  }
  return out;
}

} // namespace corral::enforce::cgroupnet
