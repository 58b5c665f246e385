// A container without a container runtime, for the fanotify tests and benchmark: a child
// in new mount and pid namespaces whose root is a fresh tmpfs (pivot_root, as runc does)
// holding copies of host programs and the libraries ldd lists, in a merged-/usr layout
// (bin -> usr/bin). Its init (pid 1 inside) is a fork of the calling program that runs
// commands on request, so a test can exec exactly what it means to and see the errno.
//
// Safety: every mount involved lives only in the sandbox's own mount namespace (the host's
// mounts are made private there first), so marking them can never touch the host.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "core/fd.h"
#include "core/result.h"
#include "workload/workload.h"

namespace corral::testing {

struct RunResult {
  int exit_code = -1; // exit status, or -1 when killed
  int signal = 0;     // the signal that killed it, or 0
  int exec_errno = 0; // errno of the failed execve, 0 when the program ran
  uint64_t nanos = 0; // wall time of the whole run (or loop)
  std::string output; // stdout and stderr, first 64 KiB
};

struct SandboxFile {
  std::string path; // inside the sandbox
  std::string content;
  mode_t mode = 0644;
};

struct SandboxOptions {
  std::vector<std::string> programs; // host paths; copied with the libraries ldd lists
  std::vector<SandboxFile> files;    // files under /data live on a second tmpfs mount
  bool pivot_root = true;            // false: a plain chroot (paths keep a host prefix)
  bool own_cgroup = true;            // a cgroup v2 of its own (the exec backstop's identity)
  // With pivot_root false: the tree lives in this subdirectory of the root tmpfs, and the
  // chroot goes there, so the root is a directory inside a mount, not a mount's root (the
  // workload's mountinfo then lists no mount at "/").
  std::string chroot_subdir;
};

// A KubeArmorPolicy selecting workloads labelled app=sandbox with one process rule per path.
std::string process_policy(const std::string& name, const std::vector<std::string>& paths,
                           const std::string& action);
std::string process_policy(const std::string& name, const std::string& path,
                           const std::string& action);

class Sandbox {
public:
  // Must be called while the process has one thread: the sandbox init is a fork of it.
  static Result<std::unique_ptr<Sandbox>> make(const SandboxOptions& options);
  ~Sandbox(); // kills the sandbox (by pid) and removes its mount point
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  [[nodiscard]] pid_t init_pid() const { return init_pid_; } // host pid of pid 1 inside
  [[nodiscard]] workload::Workload workload(const std::string& id) const;

  // Runs argv (argv[0] an absolute path inside) as `uid` and waits for it.
  Result<RunResult> run(const std::vector<std::string>& argv, uint32_t uid = 0);
  // posix_spawn()s argv `n` times, one after the other, waiting for each; stops at the
  // first failure. nanos is the time of the whole loop.
  Result<RunResult> loop(const std::vector<std::string>& argv, int n);

private:
  Sandbox() = default;
  Result<RunResult> request(uint32_t op, uint32_t arg, const std::vector<std::string>& argv);

  pid_t outer_pid_ = -1; // the child that made the namespaces; waits for init
  pid_t init_pid_ = -1;
  Fd control_;
  std::string mount_point_;
  std::string cgroup_; // its cgroup v2 directory, removed with it; "" when none
};

// True when the calling process is root; otherwise prints why the test is skipped.
bool running_as_root_or_explain(const char* test);

} // namespace corral::testing
