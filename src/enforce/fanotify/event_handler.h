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
#pragma once

#include <functional>
#include <string>

#include <sys/stat.h>

#include "enforce/enforcer.h"
#include "enforce/fanotify/group.h"
#include "enforce/fanotify/responder.h"
#include "policy/decide.h"

namespace corral::enforce::fanotify {

struct HandlerOptions {
  AlertSink sink;
  LogFn log;
  bool cache = true;
  size_t max_cached_per_group = 16384;
  std::function<void(int tid, uint64_t mask)> on_event; // tests only
};

class EventHandler {
public:
  EventHandler(HandlerOptions options, Stats& stats);
  void handle(Group& g, PendingEvent& ev);

private:
  // Fills the subject facts the category's rules need; false (event allowed, counted)
  // when they cannot be read.
  bool read_subject(Group& g, PendingEvent& ev, const struct stat& st, policy::Access& access,
                    std::string& source);
  [[nodiscard]] bool cacheable_file(const Group& g, policy::Category c,
                                    const struct stat& st) const;
  bool is_interpreter(Group& g, int tid, const struct stat& st);
  void allow_interpreter(Group& g, PendingEvent& ev, const std::string& target,
                         const struct stat& st);
  void after_exec_allowed(Group& g, const PendingEvent& ev, bool cacheable);
  void cache(Group& g, int event_fd, uint64_t mask);
  void allow_on_error(PendingEvent& ev, const std::string& what);

  HandlerOptions options_;
  Stats& stats_;
  const bool stacks_; // kernel_stacks_readable()
  std::string host_name_;
  bool cache_failure_logged_ = false;
};

} // namespace corral::enforce::fanotify
