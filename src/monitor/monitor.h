// The system monitor (issue 10): every process start, exec and exit on the node, from BPF
// (bpf/monitor.bpf.c) through one ring buffer, kept as a process tree that was seeded from
// /proc at start; and, for the cgroups whose visibility asks for it (set_visibility), their
// file opens and network calls (connect, bind, accept). The enforcers and the agent ask it who a
// process is and who its parent is — also after the process exited (a backstop kill's caller is
// gone by the time its alert is built). Its own thread reads the ring buffer; nothing on a
// permission path waits on it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"

namespace corral::monitor {

// set_visibility's mask (bpf/shared/monitor.h, enum corral_monitor_visible).
inline constexpr unsigned kVisibleFile = 1;
inline constexpr unsigned kVisibleNetwork = 2;

// A process as the monitor knows it.
struct Process {
  int tgid = 0;
  int ppid = 0;      // its parent now
  int forked_by = 0; // the process that started it (its parent then, before any reparenting)
  int nspid = 0;     // its pid in its own pid namespace
  uint32_t uid = 0;
  uint64_t cgroup = 0;
  uint64_t pidns = 0;
  uint64_t mntns = 0;
  std::string comm;
  std::string exe;  // the file its last exec was given (as the process named it)
  std::string args; // its argv, space-separated ("" when it never exec'd since seen)
  std::string tty;  // its controlling terminal at its last exec ("pts0"), "" when none
  bool exited = false;
  int exit_code = 0;
};

enum class Kind { Fork = 1, Exec = 2, Exit = 3, File = 4, Network = 5 };
inline constexpr size_t kKinds = 6; // Stats' arrays, indexed by Kind (0 unused)

// open, openat, openat2, creat by a visible process, when the call returned.
struct FileAccess {
  std::string path; // as the caller named it (relative to its cwd or dirfd); at most 255 bytes
  int flags = 0;    // O_* as passed (creat: O_CREAT|O_WRONLY|O_TRUNC)
  int result = 0;   // the new fd, or -errno
};

// connect, bind, accept/accept4 by a visible process, when the call returned.
struct NetAccess {
  enum class Op { Connect, Bind, Accept };
  Op op = Op::Connect;
  // The socket's, as the kernel has it (AF_*, SOCK_*, IPPROTO_*); 0 when the fd was no socket.
  int family = 0;
  int type = 0;
  int protocol = 0;
  // connect/bind: the address passed; accept: the peer's. Printable: "127.0.0.1", "::1", a
  // unix socket's path ("@name" when abstract); "" when none.
  std::string address;
  int port = 0;
  int result = 0; // 0 (accept: the new fd), or -errno
};

struct Event {
  Kind kind;
  Process process; // after the event (an exec's new exe and args); File/Network: the caller
  int tid = 0;     // the thread (host pid); the tgid for Fork, Exec and Exit
  std::optional<FileAccess> file; // Kind::File
  std::optional<NetAccess> net;   // Kind::Network
};

struct Stats {
  std::array<uint64_t, kKinds> events{};  // by Kind
  std::array<uint64_t, kKinds> dropped{}; // by Kind: the ring buffer (or a BPF map) was full
  size_t processes = 0;                   // in the tree, exited ones kept included
};

class Monitor {
public:
  struct Options {
    // Called on the monitor's thread for every event, after the tree has it. May be empty.
    std::function<void(const Event&)> on_event;
    std::function<void(const std::string&)> log;
    size_t keep_exited = 4096; // exited processes remembered, newest first
  };
  // Loads and attaches the programs, seeds the tree from /proc, starts the thread.
  static Result<std::unique_ptr<Monitor>> start(Options options);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  [[nodiscard]] std::optional<Process> process(int tgid) const;
  [[nodiscard]] Stats stats() const;
  // Reports the file opens (kVisibleFile) and network calls (kVisibleNetwork) of the tasks in
  // cgroup v2 `cgroup_id` (the inode number of its directory), only those of that cgroup, not
  // of cgroups below it. Mask 0 removes the entry. While no cgroup is visible the syscall
  // hooks are detached and cost nothing.
  Result<void> set_visibility(uint64_t cgroup_id, unsigned mask);
  void clear_visibility();
  void stop();

private:
  struct Impl;
  explicit Monitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace corral::monitor
