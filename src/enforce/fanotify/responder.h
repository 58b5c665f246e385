// The threads that read permission events and guarantee that every one is answered.
//
// The event thread waits in epoll on every group and on an eventfd (stop), reads a batch
// of events from a ready group, and hands each to the handler, which must answer it. The
// watchdog thread enforces the reply bound: when a batch has been in hand for longer than
// the bound (a /proc read stuck, a slow alert sink, ...), it answers FAN_ALLOW for every
// event still unanswered, and keeps reading and allowing the groups' new events until the
// event thread is back. A hung decision can thus stall a workload's open for at most the
// bound, and never the machine (TESTING.md: the agent must always answer).
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
#include <vector>

#include "core/fd.h"
#include "core/result.h"
#include "enforce/fanotify/group.h"

namespace corral::enforce::fanotify {

struct Stats {
  std::atomic<uint64_t> events{0}, denied{0}, errors_allowed{0}, timeouts_allowed{0};
  std::atomic<uint64_t> errors_denied{0}; // undecidable under posture block
  std::atomic<uint64_t> cached{0}, interpreters{0}, write_unknown{0};
};

class Responder;

// One permission event in hand: its fd (owned by the responder, closed after the handler
// returns), what it reports, and the one-time answer.
class PendingEvent {
public:
  PendingEvent(Responder& r, size_t slot, int fd, uint64_t mask, int tid)
      : responder_(r), slot_(slot), fd_(fd), mask_(mask), tid_(tid) {}
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] uint64_t mask() const { return mask_; }
  [[nodiscard]] int tid() const { return tid_; } // thread id (FAN_REPORT_TID)
  // Writes the verdict unless the watchdog already allowed the event after the bound;
  // returns whether this verdict was the one the kernel got.
  bool answer(bool allow);
  [[nodiscard]] bool answered() const;

private:
  Responder& responder_;
  size_t slot_;
  int fd_;
  uint64_t mask_;
  int tid_;
};

class Responder {
public:
  using Handler = std::function<void(Group&, PendingEvent&)>;

  static Result<std::unique_ptr<Responder>> make(std::chrono::milliseconds bound, Handler handler,
                                                 Stats& stats, LogFn log);
  ~Responder(); // stops and joins both threads
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // Starts answering the events of `g`.
  Result<void> add(std::shared_ptr<Group> g);
  // Stops reading `g` and shuts it down (Group::shut_down) on the calling thread.
  void remove(const std::shared_ptr<Group>& g);

private:
  friend class PendingEvent;
  struct Slot {
    int fd = -1;
    bool answered = false;
  };
  Responder(std::chrono::milliseconds bound, Handler handler, Stats& stats, LogFn log);
  void event_loop();
  void watchdog_loop();
  void handle_ready(int group_fd);
  bool answer(size_t slot, bool allow);
  void write_answer(int group_fd, int event_fd, bool allow);
  void drain_all();

  const std::chrono::milliseconds bound_;
  Handler handler_;
  Stats& stats_;
  LogFn log_;
  Fd epoll_;
  Fd wake_; // eventfd: stop

  std::mutex groups_mu_;
  std::unordered_map<int, std::shared_ptr<Group>> groups_; // by group fd

  std::mutex batch_mu_;
  std::condition_variable batch_cv_;
  std::shared_ptr<Group> batch_group_;
  std::vector<Slot> batch_;
  bool batch_active_ = false;
  std::chrono::steady_clock::time_point batch_start_;
  bool stop_ = false;

  std::thread events_;
  std::thread watchdog_;
};

} // namespace corral::enforce::fanotify
