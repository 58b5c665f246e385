// The decision for one permission event: gather the facts the RuleSet needs, decide(),
// answer the kernel first, then do the bookkeeping (interpreters, cache) and the alert.
//
// Interpreters (POLICY.md): the ELF interpreter and the "#!" interpreter that the kernel
// opens for an allowed exec arrive as FAN_OPEN_EXEC_PERM events of the same thread while
// that execve() is in progress. Such an event is allowed with the exec, without a verdict
// of its own, when the kernel stack shows a binary format handler opening it (see
// opening_interpreter) AND the file is the interpreter named by a binary this group
// allowed: the header of the exec just allowed (remembered per thread for 2 s), or of a
// binary whose exec is cached (its exec produces no event). A direct exec of ld.so or of
// an interpreter is judged on its own path.
//
// Cache: an allowed, unalerted verdict that no rule of the category can change with the
// subject or the open mode (CategoryTraits::subject_dependent) is cached with an inode
// ignore mark for that event type, for regular files with one link. Binaries with an
// interpreter are cached only where kernel stacks are readable (the interpreter's own
// event must then be recognised without the exec's).
//
// ELF interpreters not allowed on their own (ld.so under an allow-list) are cached only
// with the exec backstop (enforce/backstop): the file is first listed there for the
// workload's mount namespace with its own verdict (Block: a direct exec is killed; Audit:
// reported), then ignore-marked. The entries live as long as the cache they guard:
// rules_changed() drops a workload's entries when a new group (empty cache) takes over and
// stops the old group from adding more. It also sets the
// workload's verdict for execs of files on internal mounts (memfd), judged as an exec of
// kUnmarkedExecPath, the path such an exec shows (/proc/<pid>/exe) for an unnamed memfd.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include <sys/stat.h>

#include "enforce/backstop/exec_backstop.h"
#include "enforce/enforcer.h"
#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/group.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/responder.h"
#include "policy/decide.h"

namespace corral::enforce::fanotify {

constexpr const char* kUnmarkedExecPath = "/memfd: (deleted)";

struct HandlerOptions {
  AlertSink sink;
  LogFn log;
  bool cache = true;
  size_t max_cached_per_group = 16384;
  // Of all groups together (Stats::cache_marks): the kernel's max_user_marks is shared with
  // the mount marks every new group needs.
  size_t max_cached_total = 262144;
  ExecBackstop* backstop = nullptr; // may be null: ELF interpreters then ask every time
  std::function<void(int tid, uint64_t mask)> on_event; // tests only
};

class EventHandler {
public:
  EventHandler(HandlerOptions options, Stats& stats);
  void handle(Group& g, PendingEvent& ev);
  // The workload in mount namespace `mnt_ns` is about to be enforced with `rules` (null: no
  // longer enforced) by a group that has not read any event yet — a new one, or a kept one
  // `reused` with its cache; `old` (may be null) is the group that enforced it until now.
  void rules_changed(Group* old, uint64_t mnt_ns, const policy::RuleSet* rules, bool reused);
  // `g` only answers what is queued on it from now on: it adds no backstop entries.
  void retire(Group& g);
  // Drops the backstop entries of every mount namespace not in `enforced` and of every
  // workload whose cgroup is not in `enforced_cgroups`.
  void keep_backstop_entries(const std::set<uint64_t>& enforced,
                             const std::set<uint64_t>& enforced_cgroups);
  // The exec backstop's view of a workload (by cgroup): `now` (null: none) enforces it
  // instead of `old` (may be null); `reused` keeps the approvals of the kept cache.
  void workload_changed(const Group* old, const Group* now, bool reused);

private:
  // Fills the subject facts the category's rules need; false (event allowed, counted)
  // when they cannot be read.
  bool read_subject(Group& g, PendingEvent& ev, const struct stat& st, policy::Access& access,
                    std::string& source);
  [[nodiscard]] bool cacheable_file(const Group& g, policy::Category c,
                                    const struct stat& st) const;
  InterpreterLoad is_interpreter(Group& g, int tid, const struct stat& st);
  void allow_interpreter(Group& g, PendingEvent& ev, const std::string& target,
                         const struct stat& st, InterpreterLoad load);
  bool guard_interpreter(Group& g, const PendingEvent& ev, const struct stat& st,
                         const std::string& target, const policy::Verdict& own);
  void after_exec_allowed(Group& g, const PendingEvent& ev, bool cacheable);
  void cache(Group& g, int event_fd, uint64_t mask);
  // Adds the event's file to the workload's approved files in the exec backstop (before
  // the exec is allowed); false when it could not (the exec must then not be allowed).
  bool approve(Group& g, const PendingEvent& ev, const struct stat& st, uint32_t kinds);
  // Answers an event the agent cannot judge with the group's undecidable verdict.
  void undecidable(Group& g, PendingEvent& ev, policy::Category category, const std::string& why);
  void alert(Group& g, const Actor& who, const policy::Verdict& v, const AlertEvent& e,
             const std::string& reason);

  HandlerOptions options_;
  Stats& stats_;
  const bool stacks_; // kernel_stacks_readable()
  std::string host_name_;
  std::atomic<bool> cache_failure_logged_{false}; // several responder threads
  std::mutex backstop_mu_;                        // orders guard_interpreter against rules_changed
};

} // namespace corral::enforce::fanotify
