// What the fanotify backend learns about the process behind a permission event, read from
// /proc. procfs is never marked (fanotify refuses permission marks on it with EINVAL), so
// these reads can never wait for our own verdict.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::enforce::fanotify {

// The contents of a small /proc file (at most `cap` bytes), or nullopt.
std::optional<std::string> read_proc_file(const std::string& path, size_t cap = 4096);
// The target of a symlink such as /proc/<pid>/exe or /proc/self/fd/<n>, or nullopt.
std::optional<std::string> read_link(const std::string& path);

// `path` as seen inside a workload whose root reads `root_prefix` from the agent (the
// readlink of /proc/<pid>/root): "/" after pivot_root, as runc does, so paths are already
// relative to the container root; a host directory after a plain chroot, stripped here.
std::string strip_root(std::string_view path, std::string_view root_prefix);

// The program `pid` runs, as /proc/<pid>/exe reads from the agent (then strip_root it).
// runc 1.1 runs `runc init` from a read-only bind mount of its own binary that it detached
// at once: the link then reads "/" (the root of that one-file mount). Such a program is
// named by its parent's path when the parent runs the same file (runc, on the host), so
// alerts and fromSource can name the runtime.
std::optional<std::string> read_program(int pid);

// From /proc/<tid>/status. Ids are as the agent's namespaces see them.
struct ProcStatus {
  int tgid = 0;
  int ppid = 0;
  uint32_t uid = 0;   // real uid (what KubeArmor reports as UID)
  uint32_t fsuid = 0; // the uid the kernel checks file access with: our "owner"
  int ns_pid = 0;     // the pid in the task's own pid namespace (last NSpid field)
  int ns_depth = 0;   // how many pid namespaces NSpid lists
};
std::optional<ProcStatus> read_status(int tid);

// argv[1..] of `pid` joined by spaces ("" when there are none or it is unreadable).
std::string read_args(int pid);
// The controlling terminal as KubeArmor names it ("pts0"), or "".
std::string read_tty(int pid);

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
