// Alerts of the fanotify backend, with KubeArmor's fields (POLICY.md "Events").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "events/alert.h"
#include "policy/decide.h"
#include "workload/workload.h"

namespace corral::enforce::fanotify {

// The process behind an event, from /proc. Paths are relative to the workload's root.
struct Actor {
  int tid = 0, tgid = 0, ppid = 0; // as the agent sees them (host pids)
  int ns_pid = 0, ns_ppid = 0;     // inside the workload's pid namespace (0: outside it)
  uint32_t uid = 0;
  std::string exe, args, parent_exe, cwd, tty;
};
Actor read_actor(int tid, const std::string& root_prefix);

// Who a process was, for one gone from /proc before its alert was built (issue 10: the
// system monitor remembers exited processes; a backstop kill's caller has often exited).
struct Remembered {
  std::string exe;   // the program its last exec was given
  std::string args;  // its arguments, argv[0] left out (as Actor::args)
  int forked_by = 0; // host pid of the process that started it (before any reparenting)
  int nspid = 0;     // its pid in its own pid namespace
  std::string tty;   // its controlling terminal at its last exec ("pts0"), "" when none
};
using Recall = std::function<std::optional<Remembered>(int pid)>;
// Set once at start, before the first event; read_process asks it for a process /proc no
// longer has.
void set_recall(Recall recall);
// What the recall knows of `pid`; nullopt without one.
std::optional<Remembered> remembered(int pid);
// Fills who.exe, args, cwd and tty from process `pid` (the caller of an exec).
void read_process(int pid, const std::string& root_prefix, Actor& who);

struct AlertEvent {
  policy::Category category = policy::Category::Process;
  std::string_view resource; // the exec'd or opened path
  uint64_t mask = 0;         // FAN_OPEN_EXEC_PERM or FAN_OPEN_PERM
  bool allowed = false;      // what the kernel was told (a timeout allows)
};

// Process alerts follow KubeArmor: ProcessName is the exec'd program, ParentProcessName
// and Source the program calling exec (at FAN_OPEN_EXEC_PERM time the caller's image is
// still in place). File alerts name the opening program and its parent.
events::Alert make_alert(const workload::Workload& w, const Actor& who, const policy::Verdict& v,
                         const AlertEvent& e);

} // namespace corral::enforce::fanotify
