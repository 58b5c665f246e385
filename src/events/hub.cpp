#include "events/hub.h"

#include "events/format.h"

namespace corral::events {

Result<std::unique_ptr<EventHub>> EventHub::make(size_t capacity, const std::string& jsonl_path) {
  std::unique_ptr<EventHub> hub(new EventHub(capacity));
  if (!jsonl_path.empty()) {
    hub->file_.open(jsonl_path, std::ios::app);
    if (!hub->file_) {
      return errno_error("open events file " + jsonl_path, "check --events-file's directory");
    }
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
    for (const auto& a : batch) file_ << to_json(a).dump() << '\n';
    file_.flush();
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
