// What the fanotify backend learns about a task blocked in a permission event, read from
// /proc (the generic readers are in proc/proc.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proc/proc.h"

namespace corral::enforce::fanotify {

// The generic readers, as this backend has always called them.
using proc::ProcStatus;
using proc::read_args;
using proc::read_link;
using proc::read_proc_file;
using proc::read_program;
using proc::read_status;
using proc::read_tty;
using proc::strip_root;

// Whether the open that `tid` is blocked in writes. fanotify reports no open flags, so
// they are read from the blocked syscall's arguments in /proc/<tid>/syscall.
enum class OpenMode { Read, Write, Unknown };
OpenMode blocked_open_mode(int tid);
// Whether `tid` is blocked in execve()/execveat(): a file it opens then is one the kernel
// opens for that exec (the binary, its ELF or "#!" interpreter; fs/exec.c open_exec), whose
// FAN_OPEN_EXEC_PERM event came first. False when /proc/<tid>/syscall cannot tell.
bool blocked_in_exec(int tid);

// Whether `tid` is opening an interpreter for an exec in progress: its kernel stack
// (/proc/<tid>/stack) runs through a binary format handler (load_elf_binary for PT_INTERP,
// load_script for "#!", load_misc_binary), whereas the exec's own file is opened from
// alloc_bprm/do_execveat_common. nullopt when the stack is unreadable, or shows no
// notification frames within ~2 ms (the event is read before the task parks: see .cpp).
// Elf: an ELF interpreter (PT_INTERP) — a file that is then never the exec's image, which
// is what lets the exec backstop guard it; Other: a "#!" or binfmt_misc interpreter, which
// does become the image.
enum class InterpreterLoad { None, Elf, Other };
std::optional<InterpreterLoad> opening_interpreter(int tid);
// Whether this kernel shows kernel stacks (CONFIG_STACKTRACE, CAP_SYS_ADMIN).
bool kernel_stacks_readable();

} // namespace corral::enforce::fanotify
