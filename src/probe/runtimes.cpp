// Container runtime sockets: the default paths of containerd, CRI-O and docker, and the one
// the caller names; each found one is connected to (a real try, not a stat).
#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/fd.h"
#include "probe/probe.h"

namespace corral::probe {
namespace {

struct Default {
  const char* runtime;
  const char* path;
};
// /var/run is a symlink to /run on current distributions; both are listed for the others.
constexpr Default kDefaults[] = {
    {"containerd", "/run/containerd/containerd.sock"},
    {"containerd", "/var/run/containerd/containerd.sock"},
    {"containerd", "/run/k3s/containerd/containerd.sock"},
    {"containerd", "/var/snap/microk8s/common/run/containerd.sock"},
    {"CRI-O", "/run/crio/crio.sock"},
    {"CRI-O", "/var/run/crio/crio.sock"},
    {"docker", "/run/docker.sock"},
    {"docker", "/var/run/docker.sock"},
    {"cri-dockerd", "/run/cri-dockerd.sock"},
};

RuntimeSocket look(const std::string& runtime, const std::string& path, bool given) {
  RuntimeSocket s{.runtime = runtime, .path = path, .given = given};
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    s.error = std::strerror(errno);
    return s;
  }
  if (!S_ISSOCK(st.st_mode)) {
    s.error = "not a socket";
    return s;
  }
  s.found = true;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    s.error = "path too long for a unix socket";
    return s;
  }
  path.copy(addr.sun_path, path.size());
  const Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    s.reachable = true;
  } else {
    s.error = std::string("connect: ") + std::strerror(errno);
  }
  return s;
}

// The same file under two names (/var/run -> /run) is listed once.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

} // namespace

std::vector<RuntimeSocket> find_runtime_sockets(const std::string& containerd_socket) {
  std::vector<RuntimeSocket> out;
  if (!containerd_socket.empty()) out.push_back(look("containerd", containerd_socket, true));
  for (const auto& d : kDefaults) {
    bool dup = false;
    for (const auto& s : out)
      dup = dup || s.path == d.path || (s.found && same_file(s.path, d.path));
    if (!dup) out.push_back(look(d.runtime, d.path, false));
  }
  return out;
}

} // namespace corral::probe
