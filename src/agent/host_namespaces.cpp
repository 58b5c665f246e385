#include "agent/host_namespaces.h"

#include <cstring>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/fd.h"

namespace corral::agent {
namespace {

// The pid of the process listening on unix socket `path` (its credentials when it called
// listen()), in the agent's pid namespace.
Result<pid_t> listener_pid(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return Error{"socket path too long: " + path, {}};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Non-blocking: a full backlog fails at once instead of waiting for containerd.
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) return errno_error("socket");
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("connect " + path);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return errno_error("SO_PEERCRED of " + path);
  if (cred.pid <= 0) {
    return Error{"the process listening on " + path + " is outside the agent's pid namespace",
                 "run the agent in the node's pid namespace (hostPID)"};
  }
  return cred.pid;
}

std::string ns_name(const struct stat& st) {
  return "cgroup:[" + std::to_string(st.st_ino) + "]";
}

} // namespace

Result<std::string> join_host_cgroup_namespace(const std::string& containerd_socket) {
  pid_t pid = 1;
  std::string whose = "pid 1's", why_not_containerd;
  if (auto p = listener_pid(containerd_socket); p) {
    pid = *p;
    whose = "containerd's";
  } else {
    why_not_containerd = " (containerd is not reachable: " + p.error().to_string() + ")";
  }
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/cgroup";
  Fd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) {
    Error e = errno_error("open " + path, pid != 1 ? "the agent needs SYS_PTRACE" : "");
    e.message += why_not_containerd;
    return e;
  }
  struct stat theirs {};
  struct stat ours {};
  if (::fstat(target.get(), &theirs) != 0) return errno_error("fstat " + path);
  if (::stat("/proc/thread-self/ns/cgroup", &ours) != 0)
    return errno_error("stat /proc/thread-self/ns/cgroup");
  const std::string of = whose + " cgroup namespace (pid " + std::to_string(pid) + ", " +
                         ns_name(theirs) + ")" + why_not_containerd;
  if (theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) return "in " + of + " already";
  if (::setns(target.get(), CLONE_NEWCGROUP) != 0) {
    return errno_error("join " + of + " from the agent's own (" + ns_name(ours) + ")",
                       "the agent needs CAP_SYS_ADMIN");
  }
  return "joined " + of + " from the agent's own (" + ns_name(ours) +
         "): other containers' cgroups are read as the node's paths";
}

} // namespace corral::agent
