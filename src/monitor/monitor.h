// The system monitor (issue 10): every process start, exec and exit on the node, from BPF
// (bpf/monitor.bpf.c) through one ring buffer, kept as a process tree that was seeded from
// /proc at start. The enforcers and the agent ask it who a process is and who its parent
// is — also after the process exited (a backstop kill's caller is gone by the time its alert
// is built). Its own thread reads the ring buffer; nothing on a permission path waits on it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"

namespace corral::monitor {

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
  bool exited = false;
  int exit_code = 0;
};

enum class Kind { Fork = 1, Exec = 2, Exit = 3 };

struct Event {
  Kind kind;
  Process process; // after the event (an exec's new exe and args)
};

struct Stats {
  std::array<uint64_t, 4> events{};  // by Kind
  std::array<uint64_t, 4> dropped{}; // by Kind: the ring buffer was full
  size_t processes = 0;              // in the tree, exited ones kept included
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
  void stop();

private:
  struct Impl;
  explicit Monitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace corral::monitor
