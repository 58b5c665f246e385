// The /proc readers shared by the enforcers, the system monitor and the agent: a process's
// program, arguments, status, terminal, and paths as a workload sees them. procfs is never
// marked by fanotify (it refuses permission marks there with EINVAL), so these reads can
// never wait for the agent's own verdict.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::proc {

// "/proc/<pid>/<leaf>".
std::string proc_path(int pid, std::string_view leaf);
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
// A terminal's name as the kernel's tty_struct.name has it ("pts3", "tty1", "ttyS0") from
// /proc/<pid>/stat's tty_nr; "" for none or a device not named here.
std::string tty_name(unsigned tty_nr);

} // namespace corral::proc
