#include "enforce/fanotify/proc_reader.h"

#include <array>
#include <cstdlib>

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fd.h"
#include "core/strings.h"

namespace corral::enforce::fanotify {
namespace {

using proc::proc_path;

// The flags of an openat2() call: the first field of the caller's struct open_how.
std::optional<uint64_t> openat2_flags(int tid, uint64_t how_addr) {
  const Fd mem(::open(proc_path(tid, "mem").c_str(), O_RDONLY | O_CLOEXEC));
  uint64_t flags = 0;
  if (!mem || ::pread(mem.get(), &flags, sizeof flags, static_cast<off_t>(how_addr)) !=
                  static_cast<ssize_t>(sizeof flags))
    return std::nullopt;
  return flags;
}

OpenMode mode_of(uint64_t flags) {
  const bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_APPEND | O_TRUNC | O_CREAT));
  return writes ? OpenMode::Write : OpenMode::Read;
}

// fanotify queues a permission event and wakes the reader before the task parks in
// fanotify_get_response(), so the first look at it may find it still running (syscall
// shows "running", the stack unwinder sees nothing). Looks again for up to ~2 ms.
template <class Parked>
std::optional<std::string> read_parked(int tid, std::string_view leaf, size_t cap, Parked parked) {
  constexpr int kTries = 40;
  for (int i = 0;; ++i) {
    auto text = read_proc_file(proc_path(tid, leaf), cap);
    if (!text || parked(*text) || i == kTries) return text;
    if (i < 4) {
      sched_yield();
    } else {
      usleep(50);
    }
  }
}

// "<nr> <arg1> ... <arg6> <sp> <pc>" while blocked in a syscall (fs/proc/base.c
// proc_pid_syscall), split; "running" or "-1 <sp> <pc>" otherwise.
std::vector<std::string> blocked_syscall(int tid) {
  const auto text = read_parked(tid, "syscall", 256,
                                [](const std::string& t) { return !t.starts_with("running"); });
  return text ? split(trim(*text), ' ') : std::vector<std::string>{};
}

} // namespace

bool blocked_in_exec(int tid) {
  const auto fields = blocked_syscall(tid);
  if (fields.size() < 7) return false;
  const long nr = std::strtol(fields[0].c_str(), nullptr, 10);
  return nr == SYS_execve || nr == SYS_execveat;
}

OpenMode blocked_open_mode(int tid) {
  const auto fields = blocked_syscall(tid);
  if (fields.size() < 7) return OpenMode::Unknown;
  const long nr = std::strtol(fields[0].c_str(), nullptr, 10);
  std::array<uint64_t, 6> arg{};
  for (size_t i = 0; i < arg.size(); ++i)
    arg[i] = std::strtoull(fields[i + 1].c_str(), nullptr, 16);
  switch (nr) {
#ifdef SYS_open
  case SYS_open: return mode_of(arg[1]);
#endif
#ifdef SYS_creat
  case SYS_creat: return OpenMode::Write;
#endif
  case SYS_openat:
  case SYS_open_by_handle_at: return mode_of(arg[2]);
  case SYS_openat2: {
    const auto flags = openat2_flags(tid, arg[2]);
    return flags ? mode_of(*flags) : OpenMode::Unknown;
  }
  case SYS_execve:
  case SYS_execveat: return OpenMode::Read; // the exec's file, its interpreter
  default: return OpenMode::Unknown;        // io_uring, a 32-bit task's numbers, ...
  }
}

std::optional<InterpreterLoad> opening_interpreter(int tid) {
  // Parked: the unwinder sees the notification path (fsnotify() -> fanotify_handle_event ->
  // fanotify_get_response, the last often inlined); a task still running shows nothing.
  const auto parked = [](const std::string& t) {
    return t.find("fsnotify") != std::string::npos || t.find("fanotify") != std::string::npos;
  };
  const auto stack = read_parked(tid, "stack", 8192, parked);
  if (!stack || !parked(*stack)) return std::nullopt;
  for (const std::string_view handler : {"] load_elf_binary+", "] load_compat_elf_binary+"}) {
    if (stack->find(handler) != std::string::npos) return InterpreterLoad::Elf;
  }
  for (const std::string_view handler : {"] load_script+", "] load_misc_binary+"}) {
    if (stack->find(handler) != std::string::npos) return InterpreterLoad::Other;
  }
  return InterpreterLoad::None;
}

bool kernel_stacks_readable() {
  const auto stack = read_proc_file("/proc/self/stack", 4096);
  return stack && stack->find("] ") != std::string::npos;
}

} // namespace corral::enforce::fanotify
