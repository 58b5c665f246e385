#include "enforce/fanotify/workload_facts.h"

#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include "enforce/fanotify/mounts.h"

namespace corral::enforce::fanotify {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The cgroup v2 path of `pid` ("0::/path" in /proc/<pid>/cgroup).
std::optional<std::string> cgroup2_path(const std::string& pid) {
  std::istringstream in(read_file("/proc/" + pid + "/cgroup"));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("0::")) return line.substr(3);
  }
  return std::nullopt;
}

// Where the cgroup v2 hierarchy is mounted in the agent's mount namespace: read once found
// (it was read again for every group built).
std::optional<std::string> cgroup2_mount() {
  static std::mutex mu;
  static std::optional<std::string> found;
  std::lock_guard lock(mu);
  if (found) return found;
  for (const auto& m : parse_mountinfo(read_file("/proc/self/mountinfo"))) {
    if (m.fstype == "cgroup2") return found = m.mount_point;
  }
  return std::nullopt;
}

bool is_within(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.starts_with(dir) && path[dir.size()] == '/');
}

uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return ctime_ns(ts.tv_sec, ts.tv_nsec);
}

} // namespace

std::optional<uint64_t> workload_cgroup_id(int pid, std::string* why) {
  const auto theirs = cgroup2_path(std::to_string(pid));
  const auto ours = cgroup2_path("self");
  const auto mount = cgroup2_mount();
  if (!theirs || !ours || !mount) {
    *why = "no cgroup v2 hierarchy";
    return std::nullopt;
  }
  if (is_within(*ours, *theirs)) {
    *why = "its cgroup " + *theirs + " holds the agent (" + *ours + ")";
    return std::nullopt;
  }
  struct stat st {};
  if (::stat((*mount + *theirs).c_str(), &st) != 0) {
    *why = "cannot stat its cgroup " + *mount + *theirs;
    return std::nullopt;
  }
  return static_cast<uint64_t>(st.st_ino);
}

std::optional<uint64_t> process_start_ns(int pid) {
  // Field 22 of /proc/<pid>/stat, counted after the command name's closing parenthesis.
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; ++i) {
    if (i < 22) continue;
    const long hz = ::sysconf(_SC_CLK_TCK);
    const uint64_t tick = 1000000000ULL / static_cast<uint64_t>(hz);
    // The start is truncated to a tick: rounded up instead, a file written in the tick
    // before the start (the runtime preparing the rootfs) is not taken for a later one.
    const uint64_t since_boot = (std::stoull(field) + 1) * tick;
    // Both clocks read now: the start in realtime is now minus the time elapsed since it.
    const uint64_t boot_now = clock_ns(CLOCK_BOOTTIME), real_now = clock_ns(CLOCK_REALTIME);
    return real_now - (boot_now - since_boot);
  }
  return std::nullopt;
}

} // namespace corral::enforce::fanotify
