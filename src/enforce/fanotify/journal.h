// The events in hand, kept where a SIGKILL cannot erase them (issue 7, "agent crash").
//
// A permission event the agent read but did not answer stays pending until someone writes
// a response for it or its group is closed: the kernel knows the reader's answer only by
// the event's fd NUMBER in the reader's table (fs/notify/fanotify/fanotify_user.c,
// process_access_response walks the group's access_list comparing event->fd). When the
// agent dies, its fds close but those events stay on the access_list of the groups the fd
// holder keeps. So the responder records each event in hand in a small file mapped
// MAP_SHARED (its pages outlive the process): {workload id, fd number, tid, mask, path once
// read}, and the header keeps the highest fd number the agent ever gave an event. The next
// agent (or the fd holder, when no agent comes back) answers every recorded event, and
// every number up to that bound that was not recorded, before it reads the group itself:
// its own event fds would reuse those numbers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "enforce/fanotify/group.h"

namespace corral::enforce::fanotify {

// One event a previous reader left unanswered.
struct LeftEvent {
  int fd = -1;
  int tid = 0;
  uint64_t mask = 0;
  std::string path; // as the handler judged it; empty when it was not read yet
};

struct Leftovers {
  std::map<std::string, std::vector<LeftEvent>> by_workload;
  int max_fd = -1; // every event fd number the previous reader used is <= this
};

class Journal {
public:
  // Slots: up to kMaxWorkers responder threads of kBatch events each (responder.cpp).
  static constexpr size_t kSlots = 128;

  // Maps `path` (created 0600 when missing), first reading what a previous agent left in
  // it into *previous (may be null), then clearing the slots for this agent.
  static Result<std::unique_ptr<Journal>> open(const std::string& path, Leftovers* previous);
  // Reads a journal without taking it over (the fd holder, while no agent runs).
  static Leftovers read(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void record(size_t slot, const std::string& workload, int fd, int tid, uint64_t mask);
  void note_path(size_t slot, const std::string& path);
  void clear(size_t slot);
  // Raises the header's bound to `fd` (every event fd, recorded in a slot or not).
  void saw_fd(int fd);

private:
  Journal(void* map, size_t size) : map_(map), size_(size) {}
  void* map_;
  size_t size_;
};

// What the restarted reader answers for a leftover event of `g`: decide() on the recorded
// path with the group's (new) rules, or the group's undecidable verdict when the path is
// unknown or the rules depend on what only the lost event showed (subject, open mode).
bool leftover_verdict(const Group& g, const LeftEvent& e);

// Answers `left` on `group_fd` with `verdict(e)`, then every other fd number up to
// `max_fd` with `sweep_allow`. Returns how many pending events were answered (a number no
// event holds gives ENOENT and costs a syscall).
template <typename VerdictFn>
size_t answer_leftovers(int group_fd, const std::vector<LeftEvent>& left, int max_fd,
                        bool sweep_allow, VerdictFn verdict);
size_t answer_pending(int group_fd, int fd, bool allow);

template <typename VerdictFn>
size_t answer_leftovers(int group_fd, const std::vector<LeftEvent>& left, int max_fd,
                        bool sweep_allow, VerdictFn verdict) {
  size_t n = 0;
  std::vector<bool> done(static_cast<size_t>(std::max(max_fd, 0)) + 1, false);
  for (const auto& e : left) {
    n += answer_pending(group_fd, e.fd, verdict(e));
    if (e.fd >= 0 && e.fd <= max_fd) done[static_cast<size_t>(e.fd)] = true;
  }
  for (int fd = 0; fd <= max_fd; ++fd) {
    if (!done[static_cast<size_t>(fd)]) n += answer_pending(group_fd, fd, sweep_allow);
  }
  return n;
}

} // namespace corral::enforce::fanotify
