// The interface every enforcement backend implements (DESIGN.md "Enforcement backends").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/histogram.h"
#include "core/result.h"
#include "events/alert.h"
#include "policy/ruleset.h"
#include "workload/workload.h"

namespace corral::enforce {

struct Counters {
  uint64_t events = 0;           // permission events answered
  uint64_t denied = 0;           // answered with deny
  uint64_t errors_allowed = 0;   // internal error -> allowed (block-lists, posture audit)
  uint64_t errors_denied = 0;    // internal error -> denied (allow-list, posture block)
  uint64_t timeouts_allowed = 0; // not decided within the bound -> undecidable verdict: allow
  uint64_t timeouts_denied = 0;  // ... deny (allow-list, posture block)
  uint64_t leftovers = 0;        // left pending by a crashed agent, answered by this one
  // From reading a permission event to writing its answer (the primary backend's: the
  // others answer no permission events).
  LatencyHistogram::Snapshot decision_latency;
  uint64_t enforced = 0; // workloads currently enforced
  // Backend details (0 where a backend has no such thing):
  uint64_t cached = 0;          // allows cached in the kernel (fanotify: inode ignore marks)
  uint64_t cache_marks = 0;     // of those, still in place (fanotify: count against max_user_marks)
  uint64_t groups = 0;          // kernel objects in use (fanotify: groups, against max_user_groups)
  uint64_t contained = 0;       // workloads not enforced whose execs the backstop kills instead
  uint64_t interpreters = 0;    // interpreters allowed with an allowed exec (POLICY.md)
  uint64_t write_unknown = 0;   // open mode unreadable -> judged as a read
  bool backstop = false;        // the exec backstop runs
  uint64_t backstop_kills = 0;  // direct execs of guarded interpreters killed
  uint64_t backstop_audits = 0; // ... reported only
  uint64_t backstop_dropped = 0; // reports lost (ring buffer full)
  uint64_t backstop_kill_failures = 0;
  bool backstop_reader_failed = false; // its reports can no longer be read
  // Other backends' own figures, shown as they are by `corral get status` (name -> value).
  std::map<std::string, std::string> extras;
};

// Whether a workload is really enforced (issue 7, class 9): a backend proves it after
// placing its hooks (fanotify: a canary exec through the workload's root must raise the
// workload's own permission event) and says so, never passing quietly.
struct Enforcement {
  enum class State {
    Unknown,    // the backend does not prove, or does not enforce this workload
    Proving,    // hooks placed, proof under way
    Enforced,   // proven
    NotEnforced // hooks placed but they do not see the workload (reason says why)
  };
  State state = State::Unknown;
  std::string reason;
};

// How a backend covers one category of rules on this node (issue 9): no rule is ever
// reported as enforced when it is not.
struct Coverage {
  enum class Level {
    Unsupported, // rules of the category do nothing here
    Audited,     // uses are seen and alerted, but a Block rule cannot make them fail
    Enforced     // Block rules and postures make the operation fail
  };
  Level level = Level::Unsupported;
  std::string how;    // the mechanism, e.g. "fanotify", "cgroup-bpf", "kprobe cap_capable"
  std::string reason; // why not enforced, when it is not
};
std::string_view to_string(Coverage::Level l); // "enforced", "audited only", "unsupported"

// Receives every alert; called from enforcement threads AFTER the kernel was answered.
using AlertSink = std::function<void(events::Alert&&)>;

class Enforcer {
public:
  virtual ~Enforcer() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  // Starts enforcing `w` with `rules`, or swaps in new rules (flushing cached allows).
  virtual Result<void> enforce(const workload::Workload& w,
                               std::shared_ptr<const policy::RuleSet> rules) = 0;
  // Stops enforcing workload `id` (policy deleted, or the container exited).
  virtual void release(const std::string& id) = 0;
  [[nodiscard]] virtual Counters counters() const = 0;
  // What the backend proved about workload `id`'s enforcement.
  [[nodiscard]] virtual Enforcement enforcement(const std::string& /*id*/) const { return {}; }
  // How it covers category c on this node; Unsupported when it does not handle c.
  [[nodiscard]] virtual Coverage coverage(policy::Category c) const = 0;
};

// Several backends as one (the agent enforces through one Enforcer): each gets every
// workload's whole RuleSet and enforces the categories it covers. The first is the primary:
// its name, proof and backstop counters are the agent's. A change is all or nothing per
// workload: if a backend refuses it, the backends that took it get the previous rules back;
// a first enforcement stays in force in the backends that took it (release() ends it).
class CompositeEnforcer final : public Enforcer {
public:
  explicit CompositeEnforcer(std::vector<Enforcer*> backends) : backends_(std::move(backends)) {}
  [[nodiscard]] std::string_view name() const override { return backends_.front()->name(); }
  Result<void> enforce(const workload::Workload& w,
                       std::shared_ptr<const policy::RuleSet> rules) override;
  void release(const std::string& id) override;
  [[nodiscard]] Counters counters() const override;
  [[nodiscard]] Enforcement enforcement(const std::string& id) const override {
    return backends_.front()->enforcement(id);
  }
  // The best coverage any backend gives.
  [[nodiscard]] Coverage coverage(policy::Category c) const override;
  [[nodiscard]] const std::vector<Enforcer*>& backends() const { return backends_; }

private:
  std::vector<Enforcer*> backends_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const policy::RuleSet>> in_force_; // by workload id
};

} // namespace corral::enforce
