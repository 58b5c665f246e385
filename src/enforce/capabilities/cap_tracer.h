// The capability programs (bpf/cap_capable.bpf.c) loaded with libbpf: the only user of the
// skeleton; its header hides the libbpf types. It loads the strongest program this kernel
// accepts, in this order, and remembers why the stronger ones failed:
//   1. lsm/capable                BPF LSM: the check fails with EPERM     (enforces)
//   2. fmod_ret/security_capable  BPF_MODIFY_RETURN: the same             (enforces)
//   3. tp_btf/cap_capable         the capability tracepoint (Linux 6.14+): reports each use,
//                                 and kills the user of a blocked one when asked (audits)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/result.h"
#include "enforce/capabilities/actions.h"

struct ring_buffer; // libbpf's

namespace corral::enforce::capabilities {

enum class Mechanism { Lsm, FmodRet, Tracepoint };

class CapTracer {
public:
  // One use of a capability by a task of an enforced workload, as the program saw it.
  struct Use {
    uint64_t cgroup = 0, dev = 0, ino = 0;
    int cap = 0;
    Action action = Action::None;
    bool killed = false, kill_failed = false, denied = false;
    uint32_t suppressed = 0; // uses since the previous report (rate limit)
    uint32_t host_pid = 0, host_ppid = 0, pid = 0, ppid = 0, uid = 0;
    std::string comm;
    std::string exe;        // path inside its mount ("/..." prefix when truncated)
    std::string args;       // argv without argv[0], space-separated (truncated)
    std::string parent_exe; // the parent's, when it is in the same pid namespace
  };
  struct Counters {
    uint64_t reported = 0, suppressed = 0, dropped = 0, killed = 0, kill_failed = 0, noaudit = 0,
             denied = 0;
    bool reader_failed = false;
  };
  struct Options {
    bool kill_blocked = false; // tracepoint only: SIGKILL the user of a blocked capability
    std::function<void(const Use&)> on_use;
  };

  static Result<std::unique_ptr<CapTracer>> make(Options o);
  ~CapTracer(); // detaches: the links are this process's only
  CapTracer(const CapTracer&) = delete;
  CapTracer& operator=(const CapTracer&) = delete;

  [[nodiscard]] Mechanism mechanism() const { return mechanism_; }
  // "lsm/capable: Operation not permitted; fmod_ret/security_capable: ..." for the stronger
  // programs that did not load here; "" when the first did.
  [[nodiscard]] const std::string& refused() const { return refused_; }
  // Whether noaudit probes are told apart (the tracepoint needs kernel symbols for it).
  [[nodiscard]] bool noaudit_known() const { return noaudit_known_; }

  Result<void> set_workload(uint64_t cgroup, const Actions& actions, uint64_t sourced);
  void erase_workload(uint64_t cgroup);
  Result<void> set_source(uint64_t cgroup, uint64_t dev, uint64_t ino, int cap, Action a);
  void erase_sources(uint64_t cgroup); // every fromSource verdict of the workload
  [[nodiscard]] Counters counters() const;

private:
  CapTracer() = default;
  static Result<std::unique_ptr<CapTracer>> load(Mechanism m, const Options& o);
  Result<void> start(std::function<void(const Use&)> on_use);
  void read_loop();

  Mechanism mechanism_ = Mechanism::Tracepoint;
  std::string refused_;
  bool noaudit_known_ = false;
  Fd link_, workloads_, sources_, events_, counters_;
  std::function<void(const Use&)> on_use_;
  std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> ring_{nullptr, nullptr};
  std::atomic<bool> stop_{false};
  std::atomic<bool> reader_failed_{false};
  std::thread reader_;
};

std::string_view to_string(Mechanism m); // "lsm/capable", "fmod_ret/security_capable", ...

} // namespace corral::enforce::capabilities
