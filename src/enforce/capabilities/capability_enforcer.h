// The capabilities backend (issue 9): the `capabilities` section of policies, for the
// workloads the agent enforces. Mechanisms, strongest first (cap_tracer.h loads the first
// this kernel accepts; bpf/cap_capable.bpf.c holds the programs):
//   1. lsm/capable (BPF LSM)                coverage Enforced, alerts Enforcer "BPFLSM"
//   2. fmod_ret/security_capable            coverage Enforced, alerts Enforcer "BPFLSM"
//   3. tp_btf/cap_capable (tracepoint)      coverage Audited,  alerts Enforcer "eBPF Monitor"
// On the dev/CI machines (Linux 6.18, no kprobes) 1 and 2 fail to load with EPERM, so
// capability rules are audited only: every real use (a granted check, not a noaudit probe)
// by a workload whose rules alert on it is reported; a Block is reported as what happened
// (Action "Audit (Block)", Result "Passed"). With kill_blocked (corrald
// --kill-on-blocked-capability) the process using a blocked capability is sent SIGKILL
// from the tracepoint (Action "Block", Result "Killed"): the call that used it completes,
// nothing after it runs.
// The programs live as long as the agent: while it restarts nothing is reported or killed;
// the restarted agent loads them again and refills their maps as it re-enforces workloads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "enforce/capabilities/cap_tracer.h"
#include "enforce/enforcer.h"

namespace corral::enforce {

class CapabilityEnforcer final : public Enforcer {
public:
  struct Options {
    AlertSink sink;
    std::function<void(const std::string&)> log;
    bool kill_blocked = false;
  };
  static Result<std::unique_ptr<CapabilityEnforcer>> make(Options o);
  ~CapabilityEnforcer() override;
  CapabilityEnforcer(const CapabilityEnforcer&) = delete;
  CapabilityEnforcer& operator=(const CapabilityEnforcer&) = delete;

  [[nodiscard]] std::string_view name() const override { return "capabilities"; }
  Result<void> enforce(const workload::Workload& w,
                       std::shared_ptr<const policy::RuleSet> rules) override;
  void release(const std::string& id) override;
  [[nodiscard]] Counters counters() const override;
  [[nodiscard]] Coverage coverage(policy::Category c) const override;
  [[nodiscard]] capabilities::Mechanism mechanism() const { return tracer_->mechanism(); }

private:
  explicit CapabilityEnforcer(Options o) : o_(std::move(o)) {}
  void on_use(const capabilities::CapTracer::Use& u);

  struct Entry {
    workload::Workload w;
    std::shared_ptr<const policy::RuleSet> rules;
  };
  Options o_;
  std::unique_ptr<capabilities::CapTracer> tracer_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> by_id_;
  std::map<uint64_t, std::string> by_cgroup_;
};

} // namespace corral::enforce
