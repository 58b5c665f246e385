// A canary: proof that a group's marks see what the workload does (issue 7, class 9).
// Marks placed without error prove nothing: in a layout the agent did not expect (runtime,
// containerd and agent in a chroot, the agent in its own container) they may sit on mount
// instances the workload's accesses never go through, and then nothing is enforced,
// silently. So after marking, the agent execs a file of the workload through the
// workload's own root; the group must receive that exec's permission event, which the
// enforcer recognises by the canary's pid and denies.
//
// The canary is a child of the agent that, before its execve():
// - chroot()s into /proc/<pid>/root: the path is resolved as the workload resolves it and
//   can never reach a host file (an ELF interpreter too, were the exec to run);
// - installs a seccomp filter that allows only execve, exit and exit_group, killing on
//   anything else: if no mark sees the exec and it succeeds, the new image dies at its
//   first system call (SIGSYS), before it can do anything.
// It is started with a raw clone (no fork handlers run in a multithreaded agent) and does
// only system calls until it execs or exits.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/fd.h"
#include "core/result.h"

namespace corral::enforce::fanotify {

// The files a canary may exec, as paths inside the root of `pid` (a workload's init),
// best first: the init's own program where its path inside the root leads to that very
// file, then common shells. Only executable regular files are listed.
std::vector<std::string> canary_targets(int pid, const std::string& root_prefix);

class Canary {
public:
  // Starts the canary for `path` inside the root of `pid`. Call it from a thread that lives
  // as long as the canary: the child gets SIGKILL when the thread that made it ends
  // (PR_SET_PDEATHSIG follows the parent thread).
  // It waits (chrooted, before its seccomp filter) until release().
  static Result<std::unique_ptr<Canary>> spawn(int pid, const std::string& path);
  // Lets it exec.
  void release();
  ~Canary(); // kills (by its pid) and reaps it if it still runs
  Canary(const Canary&) = delete;
  Canary& operator=(const Canary&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  // Reaps it if it ended; true once it has.
  bool ended();
  // Whether it is blocked waiting for a fanotify permission verdict (its wchan), so that
  // its event is queued; polls for up to `bound`. False when it ended or the bound passed.
  bool wait_until_blocked(std::chrono::milliseconds bound);
  // How it ended, for a report: "its exec ran (no permission event stopped it)", "its exec
  // failed: <errno>", ... Only after ended().
  [[nodiscard]] std::string outcome() const;

private:
  struct ChildMemory;
  Canary(pid_t pid, std::string path);
  pid_t pid_;
  std::string path_;
  std::optional<int> status_;           // wait status once reaped
  Fd go_;                               // the write end of its go pipe
  std::unique_ptr<ChildMemory> memory_; // freed only once the child is reaped
};

} // namespace corral::enforce::fanotify
