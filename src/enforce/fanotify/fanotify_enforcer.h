// The fanotify enforcement backend (DESIGN.md "Enforcement backends"): one fanotify group
// per workload with a permission mark on every mount of its mount namespace; verdicts from
// policy::decide() on an event thread; allows that cannot depend on the subject cached in
// the kernel with ignore marks. Works on any kernel >= 5.1 with
// CONFIG_FANOTIFY_ACCESS_PERMISSIONS, LSM or not.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/fd.h"
#include "enforce/backstop/exec_backstop.h"
#include "enforce/enforcer.h"

namespace corral::enforce {

namespace fanotify {
class Group;
class Responder;
class EventHandler;
class Prover;
class Journal;
struct Leftovers;
struct Stats;
} // namespace fanotify

class FanotifyEnforcer final : public Enforcer {
public:
  // Ignore marks (cached allows) of all workloads together: they count against the kernel's
  // max_user_marks (which the mount marks of new groups need too) and pin inodes.
  static constexpr size_t kMaxCachedTotal = 262144;

  struct Options {
    AlertSink sink; // may be empty: no alerts
    // The longest an event may wait for its verdict before the workload's undecidable
    // verdict answers it (deny under an allow-list with posture block; counted in
    // timeouts_denied / timeouts_allowed). A decision takes tens of microseconds; 200 ms is
    // far above that and above the scheduling delays of a loaded node, yet short enough
    // that a stuck /proc read or a blocked alert sink stalls a workload's open only briefly.
    std::chrono::milliseconds reply_bound{200};
    // Responder threads (responder.h): one workload's flood is served in turns with the
    // others' events; more than one so that a slow decision does not hold the rest.
    size_t responder_threads = 2;
    // The file recording the events in hand (fanotify/journal.h), so that the next agent
    // can answer what this one leaves pending when it dies; empty: none.
    std::string journal;
    std::function<void(const std::string&)> log; // operational messages; may be empty
    bool cache = true;                           // inode ignore marks (off: benchmarks)
    size_t max_cached_per_workload = 16384;      // ignore marks pin inodes in the kernel
    // Of all workloads together: the kernel's max_user_marks less what the mount marks of
    // every workload need (main.cpp), at most kMaxCachedTotal.
    size_t max_cached_total = kMaxCachedTotal;
    // Each group that starts enforcing a workload (its fd, and `meta`: what it was built
    // for), and each workload whose group is released: the agent keeps copies of the fds
    // in its fd holder so that enforcement outlives the agent. May be empty.
    std::function<void(const std::string& id, int fd, const std::string& meta)> on_group;
    std::function<void(const std::string& id)> on_release;
    // Each time a workload is enforced: what its rules were compiled from, so that the fd
    // holder can judge with them while no agent runs (agent/held_rules.h). May be empty.
    std::function<void(const workload::Workload& w, const policy::RuleSet& rules)> on_rules;
    // The exec backstop (enforce/backstop/exec_backstop.h), so that ELF interpreters are
    // cached under allow-lists too. `kept_backstop`: the link fd a previous agent left with
    // the fd holder (its entries belong to the kept groups' caches). It is handed to
    // on_group under kBackstopId like a group. Off, or when it cannot load: those
    // interpreters ask on every exec, and kept groups are not reused as they are.
    bool exec_backstop = false;
    Fd kept_backstop;
    // Prove each new group with canaries (fanotify/prover.h): a workload whose marks do not
    // see a canary exec through its root is reported NOT ENFORCED (enforcement(), an alert).
    bool prove = true;
    std::chrono::milliseconds proof_timeout{1500};
    // Tests only: groups get no marks, like a layout whose marks miss the workload.
    bool test_unmarked = false;
    // Tests only: building a group fails once this many are in use (0: no such bound), as
    // when fanotify_init hits the kernel's max_user_groups or the open-files limit.
    size_t test_max_groups = 0;
    // Tests only: called on the event thread for every event before it is decided.
    std::function<void(int tid, uint64_t mask)> on_event;
    // Tests only: called on a responder thread once an event's path is journaled.
    std::function<void(int tid, const std::string& path)> on_path;
  };

  // The fd holder id of the exec backstop's link (no container id looks like it).
  static constexpr const char* kBackstopId = "corral:exec-backstop";

  // Fails when this kernel or process cannot create a permission-class fanotify group.
  static Result<std::unique_ptr<FanotifyEnforcer>> make(Options options);
  ~FanotifyEnforcer() override;
  FanotifyEnforcer(const FanotifyEnforcer&) = delete;
  FanotifyEnforcer& operator=(const FanotifyEnforcer&) = delete;

  [[nodiscard]] std::string_view name() const override { return "fanotify"; }
  // Builds the workload's new group completely (init + marks), then swaps it in and
  // closes the old one, which also drops the old cache. Rules without process or file
  // rules release the workload.
  Result<void> enforce(const workload::Workload& w,
                       std::shared_ptr<const policy::RuleSet> rules) override;
  void release(const std::string& id) override;
  [[nodiscard]] Counters counters() const override;
  // Process and file rules; fanotify sees no sockets and no capability checks.
  [[nodiscard]] Coverage coverage(policy::Category c) const override {
    if (c == policy::Category::Process || c == policy::Category::File)
      return {Coverage::Level::Enforced, "fanotify", ""};
    return {Coverage::Level::Unsupported, "", "fanotify sees execs and file opens only"};
  }
  [[nodiscard]] Enforcement enforcement(const std::string& id) const override;

  // A group a previous agent left with the fd holder. When workload `id` is enforced with
  // the same meta (pid and rules fingerprint) the group is used as it is, marks and cache
  // included; otherwise it is read with the new rules alongside the new group until the next
  // change, so the accesses that queued on it while no agent ran are judged, not allowed.
  void adopt(const std::string& id, Fd fd, std::string meta);
  // Closes the adopted groups no workload claimed (called once every workload is known).
  size_t release_unclaimed();
  // Hands every group (and the exec backstop's link) to on_group again: the fd holder
  // died and a new one must keep them.
  void rehand();
  // Events a previous agent left pending, answered by this one (journal.h).
  [[nodiscard]] uint64_t leftovers_answered() const;

  // Whether the exec backstop runs (false: off, or it could not load; see the log).
  [[nodiscard]] bool exec_backstop() const { return backstop_ != nullptr; }

private:
  explicit FanotifyEnforcer(Options options);
  void drop_stale_locked(const std::string& id);
  void release_leftovers_locked(const fanotify::Group& g);
  void hand_over_locked(const std::string& id, int fd, const std::string& meta);
  void start_backstop();
  // A task reported as just created whose program ran before its first group was built (the
  // agent came later than the runtime's start): that exec was never judged. It is now.
  void judge_started_program_locked(const fanotify::Group& g);
  // The responder the prover's thread may start reading groups on (null once stopping).
  std::mutex reading_mu_;
  fanotify::Responder* reading_ = nullptr;
  Result<void> enforce_locked(const workload::Workload& w,
                              std::shared_ptr<const policy::RuleSet> rules);
  void on_backstop_hit(const ExecBackstop::Hit& hit);
  // Who a hit is about: the workload, the rules it was judged by, its root's prefix.
  struct HitContext {
    workload::Workload workload;
    std::shared_ptr<const policy::RuleSet> rules;
    std::string root_prefix;
  };
  void alert_backstop_hit(const HitContext& c, const ExecBackstop::Hit& hit);
  // A workload no group could be built for, under rules that deny what cannot be judged: the
  // exec backstop kills every exec in it (nothing is approved) until a group enforces it.
  void contain_locked(const workload::Workload& w, std::shared_ptr<const policy::RuleSet> rules,
                      std::string& why);
  struct Contained {
    uint64_t cgroup = 0;
    HitContext context;
  };
  std::map<std::string, Contained> contained_; // by workload id

  Options options_;
  std::unique_ptr<fanotify::Stats> stats_;
  std::unique_ptr<fanotify::Journal> journal_;     // before responder_: it records into it
  std::unique_ptr<fanotify::Leftovers> leftovers_; // what the previous agent left pending
  std::map<std::string, std::string> metas_;       // what each group handed over was built for
  std::unique_ptr<ExecBackstop> backstop_;         // before handler_: the handler points to it
  bool reuse_kept_ = true; // false when kept groups' caches may rely on a backstop we lack
  Fd kept_link_;           // that backstop, attached until release_unclaimed()
  std::unique_ptr<fanotify::EventHandler> handler_;
  std::unique_ptr<fanotify::Prover> prover_;       // null: options_.prove off
  std::unique_ptr<fanotify::Responder> responder_; // destroyed first: joins the threads
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<fanotify::Group>> groups_; // by workload id
  struct Adopted {
    Fd fd;
    std::string meta;
  };
  std::map<std::string, Adopted> adopted_;                        // by workload id
  std::map<std::string, std::shared_ptr<fanotify::Group>> stale_; // adopted, other rules
  static constexpr size_t kMaxOrphanHits = 1024;
  std::vector<ExecBackstop::Hit> orphan_hits_; // backstop reports of no enforced workload yet
};

} // namespace corral::enforce
