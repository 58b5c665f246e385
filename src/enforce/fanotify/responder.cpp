#include "enforce/fanotify/responder.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

namespace corral::enforce::fanotify {
namespace {

constexpr uint64_t kPermEvents = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_ACCESS_PERM;
// A read returns whole events that fit: permission events carry no info records here
// (no FAN_REPORT_FID), so this buffer holds at most kBatch of them.
constexpr size_t kBatchBytes = Responder::kBatch * sizeof(fanotify_event_metadata);
// How many batches the watchdog answers per tick for a group whose worker is stuck.
constexpr int kDrainReads = 16;

struct RawEvent {
  int fd;
  uint64_t mask;
  int tid;
};

// The permission events in `len` bytes read from a group; other records are closed.
std::vector<RawEvent> parse_events(const char* buf, ssize_t len, const LogFn& log) {
  std::vector<RawEvent> out;
  const auto* m = reinterpret_cast<const fanotify_event_metadata*>(buf);
  for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
    if (m->vers != FANOTIFY_METADATA_VERSION) {
      if (log) log("fanotify: unexpected metadata version " + std::to_string(m->vers));
      break;
    }
    if (m->fd < 0) continue; // FAN_NOFD: queue overflow, never a permission event
    if (!(m->mask & kPermEvents)) {
      ::close(m->fd);
      continue;
    }
    out.push_back(RawEvent{m->fd, m->mask, m->pid});
  }
  return out;
}

policy::Category category_of(uint64_t mask) {
  return (mask & FAN_OPEN_EXEC_PERM) != 0 ? policy::Category::Process : policy::Category::File;
}

} // namespace

// One responder thread and the batch it holds (guarded by Responder::mu_).
struct Worker {
  struct Slot {
    int fd = -1;
    uint64_t mask = 0;
    bool answered = false;
    bool allowed = false;
  };
  size_t index = 0;
  std::shared_ptr<Group> group; // the group of the batch in hand
  std::vector<Slot> slots;
  bool active = false;
  bool timed_out = false; // the watchdog answered for this batch
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point read_at; // when the batch was read off the group
  std::thread thread;
};

bool PendingEvent::answer(bool allow) {
  return responder_.answer(worker_, slot_, allow);
}

bool PendingEvent::answered() const {
  std::lock_guard lock(responder_.mu_);
  return worker_.slots[slot_].answered;
}

bool PendingEvent::allowed() const {
  std::lock_guard lock(responder_.mu_);
  return worker_.slots[slot_].allowed;
}

void PendingEvent::note_path(const std::string& path) {
  if (auto* j = responder_.options_.journal)
    j->note_path(responder_.journal_slot(worker_, slot_), path);
  if (responder_.options_.on_path) responder_.options_.on_path(tid_, path);
}

Responder::Responder(Options options, Handler handler, Stats& stats, LogFn log)
    : options_(options), handler_(std::move(handler)), stats_(stats), log_(std::move(log)) {}

Result<std::unique_ptr<Responder>> Responder::make(Options options, Handler handler, Stats& stats,
                                                   LogFn log) {
  options.threads = std::clamp<size_t>(options.threads, 1, kMaxWorkers);
  std::unique_ptr<Responder> r(new Responder(options, std::move(handler), stats, std::move(log)));
  r->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!r->epoll_) return errno_error("epoll_create1");
  r->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!r->wake_) return errno_error("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = r->wake_.get();
  if (::epoll_ctl(r->epoll_.get(), EPOLL_CTL_ADD, r->wake_.get(), &ev) != 0)
    return errno_error("epoll_ctl");
  {
    std::lock_guard lock(r->mu_);
    for (size_t i = 0; i < options.threads; ++i) r->start_worker_locked();
  }
  r->watchdog_ = std::thread(&Responder::watchdog_loop, r.get());
  return r;
}

Responder::~Responder() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (watchdog_.joinable()) watchdog_.join();
  // No worker is added once stop_ is set (only the watchdog adds them).
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void Responder::start_worker_locked() {
  auto w = std::make_unique<Worker>();
  w->index = workers_.size();
  w->thread = std::thread(&Responder::worker_loop, this, std::ref(*w));
  workers_.push_back(std::move(w));
}

size_t Responder::journal_slot(const Worker& w, size_t i) const {
  return w.index * kBatch + i;
}

Result<void> Responder::add(std::shared_ptr<Group> g, bool read) {
  const int fd = g->fd();
  {
    std::lock_guard lock(groups_mu_);
    groups_[fd] = std::move(g);
    if (!read) {
      unread_.insert(fd);
      return {};
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    auto err = errno_error("epoll_ctl(fanotify group)");
    std::lock_guard lock(groups_mu_);
    groups_.erase(fd);
    return err;
  }
  return {};
}

void Responder::read(const std::shared_ptr<Group>& g) {
  std::lock_guard lock(groups_mu_);
  const int fd = g->fd();
  const auto it = groups_.find(fd);
  if (it == groups_.end() || it->second != g || unread_.erase(fd) == 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.fd = fd;
  // Cannot fail for a valid fanotify fd not yet in the set; should it, nothing reads the
  // group: its events wait and the workload shows as NOT ENFORCED (its canary is unseen).
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0 && log_)
    log_("fanotify: cannot read the group of " + g->workload().id + ": " + strerror(errno));
}

void Responder::remove(const std::shared_ptr<Group>& g) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, g->fd(), nullptr);
  {
    std::lock_guard lock(groups_mu_);
    groups_.erase(g->fd());
    unread_.erase(g->fd());
  }
  // Now, on this thread: a group nobody reads would hold its events until closed.
  if (!g->closed()) stats_.cache_marks -= g->cached;
  g->shut_down();
}

void Responder::worker_loop(Worker& w) {
  for (;;) {
    epoll_event ready{};
    // One group per wait: with EPOLLONESHOT no other worker gets it until it is re-armed.
    const int n = ::epoll_wait(epoll_.get(), &ready, 1, -1);
    if (n < 0) {
      if (errno != EINTR && log_) log_(std::string("fanotify: epoll_wait: ") + strerror(errno));
      continue;
    }
    if (n == 0) continue;
    if (ready.data.fd == wake_.get()) {
      std::lock_guard lock(mu_);
      if (stop_) return;
      continue;
    }
    serve(w, ready.data.fd);
  }
}

void Responder::serve(Worker& w, int group_fd) {
  std::shared_ptr<Group> g;
  {
    std::lock_guard lock(groups_mu_);
    const auto it = groups_.find(group_fd);
    if (it == groups_.end()) return; // removed meanwhile (and out of the epoll set)
    g = it->second;
  }
  alignas(fanotify_event_metadata) std::array<char, kBatchBytes> buf{};
  const ssize_t len = ::read(g->fd(), buf.data(), buf.size());
  const auto read_at = std::chrono::steady_clock::now();
  // EAGAIN: the watchdog took what was queued; EBADF/EOF: shut down.
  if (len > 0) handle_batch(w, g, buf.data(), len, read_at);
  // Back in the set, behind every group that became ready meanwhile. ENOENT: removed (the
  // number stays reserved by `g` until it is released, so it names no other file).
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.fd = group_fd;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, group_fd, &ev);
}

void Responder::handle_batch(Worker& w, const std::shared_ptr<Group>& group, const char* buf,
                             ssize_t len, std::chrono::steady_clock::time_point read_at) {
  Group& g = *group;
  const auto events = parse_events(buf, len, log_);
  auto* journal = options_.journal;
  {
    std::lock_guard lock(mu_);
    w.slots.clear();
    for (size_t i = 0; i < events.size(); ++i) {
      const auto& e = events[i];
      w.slots.push_back(Worker::Slot{e.fd, e.mask, false, false});
      if (journal != nullptr) {
        journal->saw_fd(e.fd);
        journal->record(journal_slot(w, i), g.workload().id, e.fd, e.tid, e.mask);
      }
    }
    w.group = group;
    w.start = std::chrono::steady_clock::now();
    w.read_at = read_at;
    w.timed_out = false;
    w.active = true;
  }
  for (size_t i = 0; i < events.size(); ++i) {
    PendingEvent ev(*this, w, i, events[i].fd, events[i].mask, events[i].tid);
    try {
      handler_(g, ev);
    } catch (const std::exception& e) {
      if (log_) log_(std::string("fanotify: event handler: ") + e.what());
    }
    // A handler that returned without answering: the group's verdict for what it cannot
    // judge, never a plain allow.
    if (!ev.answered() && ev.answer(g.undecidable(category_of(events[i].mask)).allow) &&
        ev.allowed())
      ++stats_.errors_allowed;
    // Out of the journal before the number is free for another event.
    if (journal != nullptr) journal->clear(journal_slot(w, i));
    ::close(events[i].fd);
  }
  std::lock_guard lock(mu_);
  w.active = false;
  w.slots.clear();
  w.group.reset();
}

bool Responder::answer(Worker& w, size_t slot, bool allow) {
  std::lock_guard lock(mu_);
  auto& s = w.slots[slot];
  if (s.answered) return false;
  write_answer(w.group ? w.group->fd() : -1, s.fd, allow, w.read_at);
  s.answered = true;
  s.allowed = allow;
  return true;
}

void Responder::write_answer(int group_fd, int event_fd, bool allow,
                             std::chrono::steady_clock::time_point read_at) {
  // Counted first: whoever waits for the process to finish then sees the count.
  ++stats_.events;
  if (!allow) ++stats_.denied;
  stats_.decision_latency.observe(std::chrono::steady_clock::now() - read_at);
  const fanotify_response r{event_fd, static_cast<uint32_t>(allow ? FAN_ALLOW : FAN_DENY)};
  if (::write(group_fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r) && errno != EBADF) {
    // Only a bug gets here (ENOENT: no such pending event); closing the group would
    // still release the event. (EBADF: the group was shut down, which allowed it.)
    if (log_) log_(std::string("fanotify: writing a response: ") + strerror(errno));
  }
}

void Responder::watchdog_loop() {
  const auto tick = std::max(std::chrono::milliseconds(1), options_.bound / 4);
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, tick);
    if (stop_) break;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Group>> stuck;
    for (auto& w : workers_) {
      if (!w->active || now - w->start < options_.bound) continue;
      time_out_locked(*w);
      if (w->group) stuck.push_back(w->group);
    }
    // Every worker stuck: one more, so that the other workloads keep their real verdicts.
    if (!stuck.empty() && stuck.size() == workers_.size() && workers_.size() < kMaxWorkers) {
      if (log_) log_("fanotify: every responder thread is stuck; starting another");
      start_worker_locked();
    }
    if (stuck.empty()) continue;
    // The stuck workers' groups are out of the epoll set until their batch ends: answer
    // what they queue meanwhile, outside the lock (their worker may finish any time).
    lock.unlock();
    for (const auto& g : stuck) drain_with_undecidable(g);
    lock.lock();
  }
}

// The worker has held its batch beyond the bound: every event still unanswered gets the
// group's undecidable verdict.
void Responder::time_out_locked(Worker& w) {
  if (w.timed_out || !w.group) return;
  w.timed_out = true;
  for (auto& s : w.slots) {
    if (s.answered) continue;
    const bool allow = w.group->undecidable(category_of(s.mask)).allow;
    ++(allow ? stats_.timeouts_allowed : stats_.timeouts_denied);
    write_answer(w.group->fd(), s.fd, allow, w.read_at);
    s.answered = true;
    s.allowed = allow;
  }
}

void Responder::drain_with_undecidable(const std::shared_ptr<Group>& g) {
  alignas(fanotify_event_metadata) std::array<char, kBatchBytes> buf{};
  for (int i = 0; i < kDrainReads; ++i) {
    const ssize_t len = ::read(g->fd(), buf.data(), buf.size());
    if (len <= 0) break;
    const auto read_at = std::chrono::steady_clock::now();
    for (const auto& e : parse_events(buf.data(), len, log_)) {
      if (options_.journal != nullptr) options_.journal->saw_fd(e.fd);
      const bool allow = g->undecidable(category_of(e.mask)).allow;
      ++(allow ? stats_.timeouts_allowed : stats_.timeouts_denied);
      write_answer(g->fd(), e.fd, allow, read_at);
      ::close(e.fd);
    }
  }
}

} // namespace corral::enforce::fanotify
