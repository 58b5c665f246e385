#include "events/hub.h"

#include <algorithm>
#include <cerrno>
#include <fstream>

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
  // Numbers start above the clock in microseconds: an agent makes far fewer than a million
  // events a second, so a restarted agent's numbers are above its predecessor's.
  hub->node_seq_ = static_cast<uint64_t>(now_micros());
  if (!file.path.empty()) {
    hub->reload(file.path);
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

void EventHub::reload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return;
  // Only the tail can hold the newest `capacity_` alerts (a line is well under 4 KiB).
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff keep =
      static_cast<std::streamoff>(std::min<size_t>(capacity_, 16384)) * 4096;
  std::string line;
  in.seekg(size > keep ? size - keep : 0);
  if (size > keep) std::getline(in, line); // a partial line
  std::deque<Alert> tail;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("Seq") || !j["Seq"].is_number_unsigned()) continue;
    Alert a = from_json(j);
    a.seq = j["Seq"].get<uint64_t>();
    if (!a.is_alert()) continue;
    node_seq_ = std::max(node_seq_, a.seq);
    tail.push_back(std::move(a));
    if (tail.size() > capacity_) tail.pop_front();
  }
  for (auto& a : tail) {
    alerts_.events.push_back(Stored{next_seq_++, std::move(a)});
    ++alerts_.published;
  }
}

void EventHub::publish(Alert&& a) {
  const bool alert = a.is_alert();
  std::unique_lock lock(mu_);
  if (a.seq == 0) a.seq = ++node_seq_;
  if (alert && writer_.joinable()) {
    {
      std::lock_guard file_lock(file_mu_);
      pending_.push_back(a);
    }
    file_cv_.notify_one();
  }
  {
    Ring& ring = alert ? alerts_ : logs_;
    ring.events.push_back(Stored{next_seq_++, std::move(a)});
    ++ring.published;
    if (ring.events.size() > capacity_) {
      ring.events.pop_front();
      ++ring.evicted;
    }
  }
  lock.unlock();
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
    for (const auto& a : batch) {
      auto j = to_json(a);
      j["Seq"] = a.seq; // what a restarted agent continues from (Alert::seq)
      text += j.dump() + '\n';
    }
    write_all(file_.get(), text);
    batch.clear();
  }
}

void EventHub::collect(const Ring& ring, uint64_t after, const Filter& f,
                       std::vector<Stored>* out) {
  auto it = std::partition_point(ring.events.begin(), ring.events.end(),
                                 [after](const Stored& s) { return s.seq <= after; });
  for (; it != ring.events.end(); ++it) {
    if (f.matches(it->event)) out->push_back(*it);
  }
}

std::vector<const EventHub::Ring*> EventHub::rings_for(const Filter& f) const {
  if (f.log_filter == "policy") return {&alerts_};
  if (f.log_filter == "system") return {&logs_};
  return {&alerts_, &logs_};
}

bool EventHub::reads(const Filter& f, int ring) {
  return ring == 0 ? f.log_filter != "system" : f.log_filter != "policy";
}

EventHub::Cursor EventHub::first() const {
  std::lock_guard lock(mu_);
  return Cursor{0, {alerts_.evicted, logs_.evicted}};
}

EventHub::Cursor EventHub::end() const {
  std::lock_guard lock(mu_);
  return Cursor{next_seq_ - 1, {alerts_.published, logs_.published}};
}

std::vector<Alert> EventHub::read(Cursor* c, const Filter& f, uint64_t* missed) const {
  std::vector<Stored> found;
  *missed = 0;
  {
    std::lock_guard lock(mu_);
    const Ring* rings[2] = {&alerts_, &logs_};
    for (int i = 0; i < 2; ++i) {
      if (reads(f, i)) {
        if (rings[i]->evicted > c->seen[i]) *missed += rings[i]->evicted - c->seen[i];
        collect(*rings[i], c->seq, f, &found);
      }
      c->seen[i] = rings[i]->published;
    }
    c->seq = next_seq_ - 1;
  }
  std::sort(found.begin(), found.end(),
            [](const Stored& a, const Stored& b) { return a.seq < b.seq; });
  std::vector<Alert> out;
  out.reserve(found.size());
  for (auto& s : found) out.push_back(std::move(s.event));
  return out;
}

std::vector<Alert> EventHub::newest(const Filter& f, size_t limit, uint64_t* last) const {
  std::vector<Stored> found;
  {
    std::lock_guard lock(mu_);
    for (const Ring* r : rings_for(f)) {
      // The newest `limit` of each ring are enough for the newest `limit` of both.
      std::vector<Stored> mine;
      for (auto it = r->events.rbegin();
           it != r->events.rend() && (limit == 0 || mine.size() < limit); ++it) {
        if (f.matches(it->event)) mine.push_back(*it);
      }
      found.insert(found.end(), mine.begin(), mine.end());
    }
    *last = next_seq_ - 1;
  }
  std::sort(found.begin(), found.end(),
            [](const Stored& a, const Stored& b) { return a.seq > b.seq; });
  if (limit != 0 && found.size() > limit) found.resize(limit);
  std::vector<Alert> out;
  out.reserve(found.size());
  for (auto it = found.rbegin(); it != found.rend(); ++it) out.push_back(std::move(it->event));
  return out;
}

std::vector<Alert> EventHub::since(uint64_t after, const Filter& f, uint64_t* last) const {
  Cursor c{after, {UINT64_MAX, UINT64_MAX}}; // evictions are not this caller's concern
  uint64_t missed = 0;
  auto out = read(&c, f, &missed);
  *last = c.seq;
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
  return alerts_.published;
}

uint64_t EventHub::evicted() const {
  std::lock_guard lock(mu_);
  return alerts_.evicted;
}

uint64_t EventHub::logs() const {
  std::lock_guard lock(mu_);
  return logs_.published;
}

uint64_t EventHub::logs_evicted() const {
  std::lock_guard lock(mu_);
  return logs_.evicted;
}

} // namespace corral::events
