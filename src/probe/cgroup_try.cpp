// The cgroup BPF try: a `cgroup/sock_create` program that denies every socket, attached to a
// scratch cgroup v2 holding only a child of ours, which must then fail to create a UDP socket
// with EPERM. The program, the child and the cgroup are gone when it returns.
#include <cerrno>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fd.h"
#include "probe/internal.h"

namespace corral::probe {
namespace {

struct ScratchCgroup {
  std::string path;
  ~ScratchCgroup() {
    if (path.empty()) return;
    // A child that just exited may keep the cgroup busy for a moment.
    for (int i = 0; i < 50 && ::rmdir(path.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};

// A child that waits for "go" on `go`, then tries socket(AF_INET, SOCK_DGRAM): exit 0 when
// it got EPERM, 1 when it got a socket, 2 otherwise. Only system calls after fork.
pid_t start_child(int go) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  char b = 0;
  if (::read(go, &b, 1) != 1) ::_exit(3);
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ::_exit(s >= 0 ? 1 : (errno == EPERM ? 0 : 2));
}

// Moves the child into the cgroup and lets it go; returns its exit code, or -errno.
int run_child(const std::string& cgroup) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -errno;
  Fd rd(p[0]), wr(p[1]);
  const pid_t pid = start_child(rd.get());
  if (pid < 0) return -errno;
  int result = 0;
  {
    const Fd procs(::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    const std::string s = std::to_string(pid);
    if (!procs || ::write(procs.get(), s.data(), s.size()) < 0) result = -errno;
  }
  if (result != 0)
    ::kill(pid, SIGKILL); // our own child, by pid
  else if (::write(wr.get(), "g", 1) != 1)
    result = -errno, ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (result != 0) return result;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
}

} // namespace

Check try_cgroup_bpf(const std::string& cgroup2) {
  Check c{.id = "cgroup_bpf",
          .title = "cgroup BPF",
          .what = "attach cgroup/sock_create (deny all) to a scratch cgroup v2, create a UDP "
                  "socket from a child in it, detach"};
  if (cgroup2.empty()) {
    c.result = Check::Result::NotTried;
    c.message = "no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)";
    return c;
  }
  ScratchCgroup cg;
  const std::string path = cgroup2 + "/corral-probe-scratch-" + std::to_string(::getpid());
  if (::mkdir(path.c_str(), 0755) != 0) return failed(std::move(c), "mkdir " + path, errno);
  cg.path = path;
  const Fd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return failed(std::move(c), "open " + path, errno);
  int err = 0;
  const Fd prog(load(BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, 0, 0, err));
  if (!prog) return failed(std::move(c), "load", err);
  if (bpf_prog_attach(prog.get(), dir.get(), BPF_CGROUP_INET_SOCK_CREATE, 0) != 0) {
    return failed(std::move(c), "attach", errno);
  }
  const int child = run_child(path);
  (void)bpf_prog_detach2(prog.get(), dir.get(), BPF_CGROUP_INET_SOCK_CREATE);
  if (child < 0) return failed(std::move(c), "move a child into " + path, -child);
  if (child == 1) {
    c = failed(std::move(c), "enforce", EPERM);
    c.err = 0; // no system call failed: the program had no effect
    c.message = "enforce: attached, but a socket in the scratch cgroup was not denied";
    return c;
  }
  if (child != 0) return failed(std::move(c), "create a socket in the scratch cgroup", EIO);
  return worked(std::move(c), "attached to " + path +
                                  "; a socket there was denied (EPERM); "
                                  "detached and removed");
}

} // namespace corral::probe
