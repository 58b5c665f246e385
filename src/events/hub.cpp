#include "events/hub.h"

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events/format.h"

namespace corral::events {
namespace {

// Opens (creating it private from the first moment) and secures the events file: the mode
// given to open() applies only to a new file, so an existing one is corrected by fchmod.
// The group is set before the mode opens the file to it.
Result<Fd> open_events_file(const EventHub::FileOptions& o) {
  const mode_t mode = o.group ? 0640 : 0600;
  Fd fd(::open(o.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open events file " + o.path, "check --events-file's directory");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat events file " + o.path);
  if (!S_ISREG(st.st_mode)) {
    return Error{"events file " + o.path + " is not a regular file", "choose --events-file", 0};
  }
  if (o.group && st.st_gid != *o.group && ::fchown(fd.get(), static_cast<uid_t>(-1), *o.group) != 0)
    return errno_error("set the group of events file " + o.path, "check --events-file-group");
  if ((st.st_mode & 07777) != mode && ::fchmod(fd.get(), mode) != 0)
    return errno_error("make events file " + o.path + " private (mode " +
                       (o.group ? "0640" : "0600") + ")");
  return fd;
}

void write_all(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; // disk full or gone: the ring still has the events
    done += static_cast<size_t>(n);
  }
}

} // namespace

Result<std::unique_ptr<EventHub>> EventHub::make(size_t capacity, const FileOptions& file) {
  std::unique_ptr<EventHub> hub(new EventHub(capacity));
  if (!file.path.empty()) {
    auto fd = open_events_file(file);
    if (!fd) return fd.error();
    hub->file_ = std::move(*fd);
    hub->writer_ = std::thread([h = hub.get()] { h->write_loop(); });
  }
  return hub;
}

EventHub::~EventHub() {
  {
    std::lock_guard lock(file_mu_);
    stopping_ = true;
  }
  file_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void EventHub::publish(Alert&& a) {
  if (writer_.joinable()) {
    std::lock_guard lock(file_mu_);
    pending_.push_back(a);
  }
  file_cv_.notify_one();
  {
    std::lock_guard lock(mu_);
    if (a.is_alert()) ++alerts_;
    ring_.push_back(std::move(a));
    ++next_seq_;
    if (ring_.size() > capacity_) {
      ring_.pop_front();
      ++evicted_;
    }
  }
  cv_.notify_all();
}

void EventHub::write_loop() {
  std::vector<Alert> batch;
  while (true) {
    {
      std::unique_lock lock(file_mu_);
      file_cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      batch.swap(pending_);
      if (batch.empty() && stopping_) return;
    }
    std::string text;
    for (const auto& a : batch) text += to_json(a).dump() + '\n';
    write_all(file_.get(), text);
    batch.clear();
  }
}

std::vector<Alert> EventHub::newest(const Filter& f, size_t limit, uint64_t* last) const {
  std::lock_guard lock(mu_);
  std::vector<Alert> out;
  for (auto it = ring_.rbegin(); it != ring_.rend() && (limit == 0 || out.size() < limit); ++it) {
    if (f.matches(*it)) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  *last = next_seq_ - 1;
  return out;
}

std::vector<Alert> EventHub::since(uint64_t after, const Filter& f, uint64_t* last) const {
  std::lock_guard lock(mu_);
  std::vector<Alert> out;
  const uint64_t first_seq = next_seq_ - ring_.size();
  for (uint64_t seq = std::max(after + 1, first_seq); seq < next_seq_; ++seq) {
    const Alert& a = ring_[seq - first_seq];
    if (f.matches(a)) out.push_back(a);
  }
  *last = next_seq_ - 1;
  return out;
}

bool EventHub::wait(uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return next_seq_ - 1 > seq; });
}

uint64_t EventHub::total() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

uint64_t EventHub::alerts() const {
  std::lock_guard lock(mu_);
  return alerts_;
}

uint64_t EventHub::evicted() const {
  std::lock_guard lock(mu_);
  return evicted_;
}

} // namespace corral::events
