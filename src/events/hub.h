// Where every event goes: bounded in-memory rings for `corral logs` (with waiting for
// --follow) and, when configured, a JSON-lines file of the alerts written by its own thread
// so that the enforcement threads never wait on disk. Alerts and visibility logs have rings
// of their own: a storm of logs never evicts an alert (DESIGN.md "Monitor"). Logs are not
// written to the file (a storm would outrun the disk); `corral logs --follow` streams them. The
// file holds every alert's argv and cwd (secrets passed on command lines included), so it is
// private: mode 0600, or 0640 with a configured group of readers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "core/fd.h"
#include "core/result.h"
#include "events/alert.h"
#include "events/filter.h"

namespace corral::events {

class EventHub {
public:
  struct FileOptions {
    std::string path; // empty: no file
    // The group allowed to read it (mode 0640); unset: root only (0600). The mode and group
    // of an existing file are corrected too: an earlier agent created it 0644.
    std::optional<gid_t> group;
  };
  // `capacity` alerts and as many logs are kept in memory. The newest `capacity` alerts of
  // an existing events file are read back (an agent restart keeps what it buffered).
  static Result<std::unique_ptr<EventHub>> make(size_t capacity, const FileOptions& file);
  static Result<std::unique_ptr<EventHub>> make(size_t capacity, const std::string& jsonl_path) {
    return make(capacity, FileOptions{jsonl_path, std::nullopt});
  }
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  void publish(Alert&& a);

  // The newest `limit` (0 = all) stored events matching `f`, oldest first; `*last` receives
  // the sequence number to continue from with since().
  std::vector<Alert> newest(const Filter& f, size_t limit, uint64_t* last) const;
  std::vector<Alert> since(uint64_t after, const Filter& f, uint64_t* last) const;
  // A reader's place: the hub sequence read up to, and how many events each ring (alerts,
  // logs) had published by then — what tells evictions the reader never saw.
  struct Cursor {
    uint64_t seq = 0;
    uint64_t seen[2] = {0, 0};
  };
  [[nodiscard]] Cursor first() const; // before every stored event
  [[nodiscard]] Cursor end() const;   // after every stored event
  // The events after `*c` matching `f`, oldest first; moves `*c` past them. `*missed`
  // receives how many events (of the rings `f` reads) were evicted before this reader read
  // them: a reader slower than the events, by more than a ring holds.
  std::vector<Alert> read(Cursor* c, const Filter& f, uint64_t* missed) const;
  // Waits until an event newer than `seq` exists; false on timeout.
  bool wait(uint64_t seq, std::chrono::milliseconds timeout) const;

  [[nodiscard]] uint64_t total() const;
  [[nodiscard]] uint64_t alerts() const;
  [[nodiscard]] uint64_t evicted() const; // alerts evicted from memory
  [[nodiscard]] uint64_t logs() const;
  [[nodiscard]] uint64_t logs_evicted() const;

private:
  explicit EventHub(size_t capacity) : capacity_(capacity) {}
  void write_loop();
  void reload(const std::string& path); // the newest alerts of an existing events file

  struct Stored {
    uint64_t seq;
    Alert event;
  };
  struct Ring {
    std::deque<Stored> events; // ascending seq
    uint64_t published = 0, evicted = 0;
  };
  // The events of `ring` newer than `after`, matching `f`, appended to `out`.
  static void collect(const Ring& ring, uint64_t after, const Filter& f, std::vector<Stored>* out);
  std::vector<const Ring*> rings_for(const Filter& f) const;
  static bool reads(const Filter& f, int ring); // ring 0: alerts, 1: logs

  const size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Ring alerts_, logs_;
  uint64_t next_seq_ = 1; // hub sequence of the next event (this process's order)
  uint64_t node_seq_ = 0; // the last Alert::seq given (see Alert::seq)

  Fd file_;
  std::mutex file_mu_;
  std::condition_variable file_cv_;
  std::vector<Alert> pending_;
  bool stopping_ = false;
  std::thread writer_;
};

} // namespace corral::events
