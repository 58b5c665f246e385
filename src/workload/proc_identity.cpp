#include "workload/proc_identity.h"

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>

namespace corral::workload {
namespace {

// Where cgroup2 is mounted in our mount namespace: /sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid (cgroup v1 + v2) hosts like the dev machines; "" if none.
std::string cgroup2_mount() {
  static std::once_flag once;
  static std::string mount;
  std::call_once(once, [] {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      // mountinfo(5): "id parent maj:min root mountpoint options [optional...] - fstype ..."
      const auto dash = line.find(" - ");
      if (dash == std::string::npos) continue;
      std::istringstream tail(line.substr(dash + 3));
      std::string fstype;
      tail >> fstype;
      if (fstype != "cgroup2") continue;
      std::istringstream head(line.substr(0, dash));
      std::string id, parent, devno, root;
      head >> id >> parent >> devno >> root >> mount;
      return;
    }
  });
  return mount;
}

// The path of pid's cgroup in the v2 hierarchy ("0::<path>" in /proc/<pid>/cgroup), or "".
std::string cgroup2_path(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return {};
}

Result<uint64_t> ns_inode(int pid, const char* ns) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error("stat " + path);
  return static_cast<uint64_t>(st.st_ino);
}

} // namespace

uint64_t cgroup_v2_id(int pid) {
  const std::string mount = cgroup2_mount();
  const std::string rel = cgroup2_path(pid);
  if (mount.empty() || rel.empty()) return 0;
  // A cgroup2 file handle is the 64-bit kernfs node id, the value the BPF helper
  // bpf_get_current_cgroup_id() returns (the way systemd and libbpf read it too).
  alignas(struct file_handle) unsigned char buf[sizeof(struct file_handle) + sizeof(uint64_t)]{};
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  const std::string path = mount + rel;
  if (::name_to_handle_at(AT_FDCWD, path.c_str(), fh, &mount_id, 0) != 0) return 0;
  uint64_t id = 0;
  std::memcpy(&id, fh->f_handle, sizeof id);
  return id;
}

Result<void> fill_process_identity(Workload& w) {
  if (w.init_pid <= 0) return Error{"workload " + w.id + " has no init pid", {}};
  w.root_path = "/proc/" + std::to_string(w.init_pid) + "/root";
  auto mnt = ns_inode(w.init_pid, "mnt");
  if (!mnt) return mnt.error();
  auto pidns = ns_inode(w.init_pid, "pid");
  if (!pidns) return pidns.error();
  w.mntns_inode = *mnt;
  w.pidns_inode = *pidns;
  w.cgroup_id = cgroup_v2_id(w.init_pid);
  return {};
}

} // namespace corral::workload
