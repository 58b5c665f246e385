// The threads that read permission events and guarantee that every one is answered.
//
// Fairness (issue 7, "overload"): each group's fd is in one epoll set with EPOLLONESHOT,
// read by a small pool of worker threads. A worker takes one ready group, reads at most
// kBatch events from it, hands each to the handler, then re-arms the group; re-armed and
// still readable, the group goes to the back of epoll's ready list, so a workload that
// floods its queue gets one batch per turn and every other ready workload is served in
// between. EPOLLONESHOT also means one group is read by one worker at a time, so the
// per-group state the handler keeps (Group, "event thread only") needs no lock.
//
// The reply bound: when a worker has held a batch longer than the bound (a /proc read
// stuck, a slow alert sink, ...), the watchdog answers every event of it still unanswered
// with the group's undecidable verdict — deny under an allow-list with posture block,
// allow under audit or a block-list (Group::undecidable) — never a plain allow, and counts
// it (timeouts_denied / timeouts_allowed). While that worker stays stuck, the watchdog
// also answers its group's new events the same way, and when every worker is stuck it
// starts another one (up to kMaxWorkers), so other workloads keep their real verdicts.
//
// Memory is bounded: at most kMaxWorkers x kBatch events (and their fds) are in hand; the
// rest waits in the kernel's queue, whose length is bounded by the workload's blocked tasks
// (FAN_UNLIMITED_QUEUE, group.cpp). Each event in hand is recorded in the journal
// (journal.h) so that a restarted agent can answer what this one leaves behind.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/fd.h"
#include "core/histogram.h"
#include "core/result.h"
#include "enforce/fanotify/group.h"
#include "enforce/fanotify/journal.h"

namespace corral::enforce::fanotify {

struct Stats {
  std::atomic<uint64_t> events{0}, denied{0}, errors_allowed{0};
  // Not decided within the bound: answered with the group's undecidable verdict.
  std::atomic<uint64_t> timeouts_allowed{0}, timeouts_denied{0};
  // Left unanswered by a previous agent (journal.h), answered by this one.
  std::atomic<uint64_t> leftovers{0};
  std::atomic<uint64_t> errors_denied{0}; // undecidable under posture block
  std::atomic<uint64_t> cached{0}, interpreters{0}, write_unknown{0};
  // Ignore marks of the groups still open (cached counts every one ever placed).
  std::atomic<uint64_t> cache_marks{0};
  // From reading an event off the group to writing its answer (whoever answers it).
  LatencyHistogram decision_latency;
};

class Responder;
struct Worker;

// One permission event in hand: its fd (owned by the responder, closed after the handler
// returns), what it reports, and the one-time answer.
class PendingEvent {
public:
  PendingEvent(Responder& r, Worker& w, size_t slot, int fd, uint64_t mask, int tid)
      : responder_(r), worker_(w), slot_(slot), fd_(fd), mask_(mask), tid_(tid) {}
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] uint64_t mask() const { return mask_; }
  [[nodiscard]] int tid() const { return tid_; } // thread id (FAN_REPORT_TID)
  // Writes the verdict unless the watchdog already answered the event after the bound;
  // returns whether this verdict was the one the kernel got.
  bool answer(bool allow);
  [[nodiscard]] bool answered() const;
  // The verdict the kernel got (meaningful once answered()).
  [[nodiscard]] bool allowed() const;
  // The path the handler judges (journal.h: a restarted agent judges a leftover by it).
  void note_path(const std::string& path);

private:
  Responder& responder_;
  Worker& worker_;
  size_t slot_;
  int fd_;
  uint64_t mask_;
  int tid_;
};

class Responder {
public:
  using Handler = std::function<void(Group&, PendingEvent&)>;
  struct Options {
    std::chrono::milliseconds bound{200};
    size_t threads = 2;         // workers started at once (1..kMaxWorkers)
    Journal* journal = nullptr; // may be null: events in hand are not recorded
    std::function<void(int tid, const std::string& path)> on_path; // tests only
  };
  static constexpr size_t kBatch = 16;     // events one worker reads from a group per turn
  static constexpr size_t kMaxWorkers = 8; // Journal::kSlots >= kMaxWorkers * kBatch

  static Result<std::unique_ptr<Responder>> make(Options options, Handler handler, Stats& stats,
                                                 LogFn log);
  ~Responder(); // stops and joins every thread
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // Starts answering the events of `g`; with `read` false, only once read(g) is called
  // (its events queue in the kernel meanwhile, their tasks waiting).
  Result<void> add(std::shared_ptr<Group> g, bool read = true);
  // Starts reading a group added with `read` false; nothing if it is gone or read already.
  void read(const std::shared_ptr<Group>& g);
  // Stops reading `g` and shuts it down (Group::shut_down) on the calling thread.
  void remove(const std::shared_ptr<Group>& g);

private:
  friend class PendingEvent;
  Responder(Options options, Handler handler, Stats& stats, LogFn log);
  void start_worker_locked();
  void worker_loop(Worker& w);
  void serve(Worker& w, int group_fd);
  void handle_batch(Worker& w, const std::shared_ptr<Group>& group, const char* buf, ssize_t len,
                    std::chrono::steady_clock::time_point read_at);
  void watchdog_loop();
  void time_out_locked(Worker& w);
  void drain_with_undecidable(const std::shared_ptr<Group>& g);
  bool answer(Worker& w, size_t slot, bool allow);
  // `read_at`: when the event was read off the group (its decision latency ends here).
  void write_answer(int group_fd, int event_fd, bool allow,
                    std::chrono::steady_clock::time_point read_at);
  [[nodiscard]] size_t journal_slot(const Worker& w, size_t i) const;

  const Options options_;
  Handler handler_;
  Stats& stats_;
  LogFn log_;
  Fd epoll_;
  Fd wake_; // eventfd: stop (level-triggered, never read: wakes every worker)

  std::mutex groups_mu_;
  std::unordered_map<int, std::shared_ptr<Group>> groups_; // by group fd
  std::unordered_set<int> unread_;                         // added, read() not called yet

  std::mutex mu_; // the workers and their batches
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool stop_ = false;
  std::thread watchdog_;
};

} // namespace corral::enforce::fanotify
