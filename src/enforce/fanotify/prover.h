// Proving every group (issue 7, class 9): after a group is built, and again whenever a new
// group replaces it (new rules, a restarted task), canaries (canary.h) exec files of the
// workload through its root until one raises a permission event on that very group, or
// every candidate failed; a workload whose group never sees its canary is NOT ENFORCED:
// logged, alerted (so `corral logs` shows it) and reported through enforcement().
//
// Threads: the canaries are started and watched by the prover's own thread (never the one
// answering events, which only calls on_event), each with a deadline.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "enforce/enforcer.h"
#include "enforce/fanotify/group.h"

namespace corral::enforce::fanotify {

class Canary;

class Prover {
public:
  struct Options {
    AlertSink sink; // may be empty
    LogFn log;      // may be empty
    // How long a canary may take to raise its event. An event arrives within microseconds
    // of the exec; the bound covers a loaded node (and an event thread busy with a batch).
    std::chrono::milliseconds timeout{1500};
    // Called on the prover's thread once a group's first canary waits in its permission
    // event (or none could be started): the group may be read from then on.
    std::function<void(const std::shared_ptr<Group>&)> on_started;
  };
  explicit Prover(Options options);
  ~Prover(); // stops its thread; its canaries are killed by pid and reaped
  Prover(const Prover&) = delete;
  Prover& operator=(const Prover&) = delete;

  // Starts proving `g` for its workload, replacing any proof of an earlier group, and
  // returns at once. Read `g` only from on_started: the first canary's event is then queued
  // before any of the group's events is decided, so no ignore mark (cache) the group places
  // can hide the canary. (Waiting here for each canary made applying a policy to hundreds
  // of workloads take seconds; the groups are now built at once and read as their canaries
  // start.)
  void begin(const std::shared_ptr<Group>& g);
  // For every permission event, before it is decided (event thread): true when `tid` is a
  // canary's, which must then be answered `allow`: denied on the group being proven (it
  // never runs), allowed on any other group (another group seeing the exec first must let
  // it reach ours; the canary's seccomp filter still kills it should it run).
  bool on_event(const Group& g, int tid, bool& allow);
  // Workload `id` is no longer enforced.
  void forget(const std::string& id);
  [[nodiscard]] Enforcement enforcement(const std::string& id) const;

private:
  struct Proof;
  void run();
  void start(const std::shared_ptr<Proof>& p, bool first);
  // Advances `p`; true when it is settled (or cancelled).
  bool check(const std::shared_ptr<Proof>& p);
  void settle(Proof& p, bool enforced, const std::string& reason);
  void alert(const Proof& p, const std::string& reason);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, std::shared_ptr<Proof>> proofs_;     // under way, by workload id
  std::vector<std::shared_ptr<Proof>> requests_;             // begun, not started yet
  std::unordered_map<int, std::shared_ptr<Proof>> canaries_; // by canary pid
  std::atomic<size_t> live_canaries_{0};                     // on_event's fast path: 0 = no lock
  std::map<std::string, Enforcement> results_;
  std::thread thread_;
};

} // namespace corral::enforce::fanotify
