// Kernel facts: release, BTF, the cgroup v2 mount and the active LSM list.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fd.h"
#include "probe/probe.h"

namespace corral::probe {
namespace {

constexpr const char* kLsmFile = "/sys/kernel/security/lsm";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    while (!item.empty() && (item.back() == '\n' || item.back() == ' ')) item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// mountinfo escapes spaces, tabs, newlines and backslashes as \ooo (fs/proc_namespace.c).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Reads the lsm file of a securityfs mounted in a child's private mount namespace: nothing
// becomes visible outside it, and the mount goes away with the child. The child only makes
// system calls (no allocation), as a child of a threaded process must.
std::string read_lsm_in_private_namespace(std::string& error) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    return {};
  }
  Fd rd(pipefd[0]), wr(pipefd[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    return {};
  }
  if (pid == 0) {
    // Exit codes: 10 + step, so the parent can say which step failed with errno as text.
    char buf[512];
    int step = 0;
    if (::unshare(CLONE_NEWNS) != 0) step = 1;
    // MS_PRIVATE first: otherwise the new mount could propagate back to the host's tree.
    else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      step = 2;
    else if (::mount("securityfs", "/sys/kernel/security", "securityfs",
                     MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      step = 3;
    if (step == 0) {
      const int fd = ::open(kLsmFile, O_RDONLY | O_CLOEXEC);
      const ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
      if (n < 0)
        step = 4;
      else if (::write(wr.get(), buf, static_cast<size_t>(n)) != n)
        step = 5;
    }
    if (step != 0) {
      const int e = errno;
      (void)::write(wr.get(), &e, sizeof e);
    }
    ::_exit(step == 0 ? 0 : 10 + step);
  }
  wr.reset();
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(rd.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return out;
  static const char* steps[] = {"unshare(CLONE_NEWNS)", "make / private", "mount securityfs",
                                "read lsm", "pipe"};
  int e = 0;
  if (out.size() == sizeof e) std::memcpy(&e, out.data(), sizeof e);
  const int step = WIFEXITED(status) ? WEXITSTATUS(status) - 10 : 0;
  error = (step >= 1 && step <= 5 ? steps[step - 1] : "securityfs child") + std::string(": ") +
          (e != 0 ? std::strerror(e) : "failed");
  return {};
}

} // namespace

LsmList read_lsm_list() {
  LsmList l;
  if (std::ifstream f(kLsmFile); f) { // mounted by the init system on most distributions
    std::string s;
    std::getline(f, s);
    l.active = split_commas(s);
    l.source = kLsmFile;
    return l;
  }
  if (::geteuid() != 0) {
    l.error = "needs root (securityfs is not mounted here; reading it means mounting it)";
    return l;
  }
  std::string error;
  const std::string s = read_lsm_in_private_namespace(error);
  if (error.empty()) {
    l.active = split_commas(s);
    l.source = "securityfs mounted in a private mount namespace (not mounted on the host)";
    return l;
  }
  l.error = error;
  return l;
}

std::string find_cgroup2(bool* hybrid) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line, found;
  bool v1 = false;
  while (std::getline(f, line)) {
    // "36 35 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, parent, dev, root, mountpoint, fstype;
    pre >> id >> parent >> dev >> root >> mountpoint;
    post >> fstype;
    if (fstype == "cgroup2" && found.empty()) found = unescape(mountpoint);
    if (fstype == "cgroup") v1 = true;
  }
  if (hybrid != nullptr) *hybrid = v1 && !found.empty();
  return found;
}

Kernel read_kernel() {
  Kernel k;
  utsname u{};
  if (::uname(&u) == 0) {
    k.release = u.release;
    k.version = u.version;
    k.machine = u.machine;
  }
  struct stat st {};
  if (::stat("/sys/kernel/btf/vmlinux", &st) == 0) k.btf = "/sys/kernel/btf/vmlinux";
  k.cgroup2 = find_cgroup2(&k.cgroup_hybrid);
  k.lsm = read_lsm_list();
  return k;
}

} // namespace corral::probe
