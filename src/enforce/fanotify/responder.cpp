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
// Each event read costs an fd until it is answered; a read of 4 KiB holds at most 170,
// well under the default RLIMIT_NOFILE. (When fanotify cannot create the event's fd it
// denies the event itself: fs/notify/fanotify/fanotify_user.c.)
constexpr size_t kReadBytes = 4096;
// How many reads one drain pass makes per group while the event thread is stuck.
constexpr int kDrainReads = 64;

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

} // namespace

bool PendingEvent::answer(bool allow) {
  return responder_.answer(slot_, allow);
}

bool PendingEvent::answered() const {
  std::lock_guard lock(responder_.batch_mu_);
  return responder_.batch_[slot_].answered;
}

Responder::Responder(std::chrono::milliseconds bound, Handler handler, Stats& stats, LogFn log)
    : bound_(bound), handler_(std::move(handler)), stats_(stats), log_(std::move(log)) {}

Result<std::unique_ptr<Responder>> Responder::make(std::chrono::milliseconds bound, Handler handler,
                                                   Stats& stats, LogFn log) {
  std::unique_ptr<Responder> r(new Responder(bound, std::move(handler), stats, std::move(log)));
  r->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!r->epoll_) return errno_error("epoll_create1");
  r->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!r->wake_) return errno_error("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = r->wake_.get();
  if (::epoll_ctl(r->epoll_.get(), EPOLL_CTL_ADD, r->wake_.get(), &ev) != 0)
    return errno_error("epoll_ctl");
  r->events_ = std::thread(&Responder::event_loop, r.get());
  r->watchdog_ = std::thread(&Responder::watchdog_loop, r.get());
  return r;
}

Responder::~Responder() {
  {
    std::lock_guard lock(batch_mu_);
    stop_ = true;
  }
  batch_cv_.notify_all();
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (events_.joinable()) events_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

Result<void> Responder::add(std::shared_ptr<Group> g) {
  const int fd = g->fd();
  {
    std::lock_guard lock(groups_mu_);
    groups_[fd] = std::move(g);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    auto err = errno_error("epoll_ctl(fanotify group)");
    std::lock_guard lock(groups_mu_);
    groups_.erase(fd);
    return err;
  }
  return {};
}

void Responder::remove(const std::shared_ptr<Group>& g) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, g->fd(), nullptr);
  {
    std::lock_guard lock(groups_mu_);
    groups_.erase(g->fd());
  }
  // Now, on this thread: a group nobody reads would hold its events until closed.
  g->shut_down();
}

void Responder::event_loop() {
  std::array<epoll_event, 16> ready{};
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), ready.data(), static_cast<int>(ready.size()), -1);
    if (n < 0) {
      if (errno != EINTR && log_) log_(std::string("fanotify: epoll_wait: ") + strerror(errno));
      continue;
    }
    for (int i = 0; i < n; ++i) {
      if (ready[i].data.fd == wake_.get()) {
        std::lock_guard lock(batch_mu_);
        if (stop_) return;
        continue;
      }
      handle_ready(ready[i].data.fd);
    }
  }
}

void Responder::handle_ready(int group_fd) {
  std::shared_ptr<Group> g;
  {
    std::lock_guard lock(groups_mu_);
    const auto it = groups_.find(group_fd);
    if (it == groups_.end()) return; // removed meanwhile
    g = it->second;
  }
  alignas(fanotify_event_metadata) std::array<char, kReadBytes> buf{};
  const ssize_t len = ::read(g->fd(), buf.data(), buf.size());
  if (len <= 0) return; // EAGAIN: nothing left (the watchdog took it, or it was shut down)
  const auto events = parse_events(buf.data(), len, log_);
  {
    std::lock_guard lock(batch_mu_);
    batch_.clear();
    for (const auto& e : events) batch_.push_back(Slot{e.fd, false});
    batch_group_ = g;
    batch_start_ = std::chrono::steady_clock::now();
    batch_active_ = true;
  }
  for (size_t i = 0; i < events.size(); ++i) {
    PendingEvent ev(*this, i, events[i].fd, events[i].mask, events[i].tid);
    try {
      handler_(*g, ev);
    } catch (const std::exception& e) {
      if (log_) log_(std::string("fanotify: event handler: ") + e.what());
    }
    if (!ev.answered()) {
      ++stats_.errors_allowed;
      ev.answer(true);
    }
    ::close(events[i].fd);
  }
  std::lock_guard lock(batch_mu_);
  batch_active_ = false;
  batch_.clear();
  batch_group_.reset();
}

bool Responder::answer(size_t slot, bool allow) {
  std::lock_guard lock(batch_mu_);
  Slot& s = batch_[slot];
  if (s.answered) return false;
  write_answer(batch_group_->fd(), s.fd, allow);
  s.answered = true;
  return true;
}

void Responder::write_answer(int group_fd, int event_fd, bool allow) {
  // Counted first: whoever waits for the process to finish then sees the count.
  ++stats_.events;
  if (!allow) ++stats_.denied;
  const fanotify_response r{event_fd, static_cast<uint32_t>(allow ? FAN_ALLOW : FAN_DENY)};
  if (::write(group_fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r) && errno != EBADF) {
    // Only a bug gets here (ENOENT: no such pending event); closing the group would
    // still release the event. (EBADF: the group was shut down, which allowed it.)
    if (log_) log_(std::string("fanotify: writing a response: ") + strerror(errno));
  }
}

void Responder::watchdog_loop() {
  const auto tick = std::max(std::chrono::milliseconds(1), bound_ / 4);
  std::unique_lock lock(batch_mu_);
  while (!stop_) {
    batch_cv_.wait_for(lock, tick);
    if (stop_ || !batch_active_ || std::chrono::steady_clock::now() - batch_start_ < bound_)
      continue;
    // The event thread has held this batch beyond the bound: allow what it has not
    // answered, then whatever the groups queued meanwhile.
    for (auto& s : batch_) {
      if (s.answered) continue;
      ++stats_.timeouts_allowed;
      write_answer(batch_group_->fd(), s.fd, true);
      s.answered = true;
    }
    lock.unlock();
    drain_all();
    lock.lock();
  }
}

void Responder::drain_all() {
  std::vector<std::shared_ptr<Group>> groups;
  {
    std::lock_guard lock(groups_mu_);
    for (const auto& [fd, g] : groups_) groups.push_back(g);
  }
  alignas(fanotify_event_metadata) std::array<char, kReadBytes> buf{};
  for (const auto& g : groups) {
    for (int i = 0; i < kDrainReads; ++i) {
      const ssize_t len = ::read(g->fd(), buf.data(), buf.size());
      if (len <= 0) break;
      for (const auto& e : parse_events(buf.data(), len, log_)) {
        ++stats_.timeouts_allowed;
        write_answer(g->fd(), e.fd, true);
        ::close(e.fd);
      }
    }
  }
}

} // namespace corral::enforce::fanotify
