// Where every event goes: a bounded in-memory ring for `corral logs` (with waiting for
// --follow) and, when configured, a JSON-lines file written by its own thread so that the
// enforcement threads never wait on disk.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "events/alert.h"
#include "events/filter.h"

namespace corral::events {

class EventHub {
public:
  // `capacity` events are kept in memory; `jsonl_path` may be empty.
  static Result<std::unique_ptr<EventHub>> make(size_t capacity, const std::string& jsonl_path);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  void publish(Alert&& a);

  // The newest `limit` (0 = all) stored events matching `f`, oldest first; `*last` receives
  // the sequence number to continue from with since().
  std::vector<Alert> newest(const Filter& f, size_t limit, uint64_t* last) const;
  std::vector<Alert> since(uint64_t after, const Filter& f, uint64_t* last) const;
  // Waits until an event newer than `seq` exists; false on timeout.
  bool wait(uint64_t seq, std::chrono::milliseconds timeout) const;

  [[nodiscard]] uint64_t total() const;
  [[nodiscard]] uint64_t alerts() const;
  [[nodiscard]] uint64_t evicted() const;

private:
  explicit EventHub(size_t capacity) : capacity_(capacity) {}
  void write_loop();

  const size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Alert> ring_;
  uint64_t next_seq_ = 1; // sequence of the next event; ring_.back() is next_seq_-1
  uint64_t alerts_ = 0;
  uint64_t evicted_ = 0;

  std::ofstream file_;
  std::mutex file_mu_;
  std::condition_variable file_cv_;
  std::vector<Alert> pending_;
  bool stopping_ = false;
  std::thread writer_;
};

} // namespace corral::events
