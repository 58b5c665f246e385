// A fixed-bucket latency histogram that an enforcement thread can feed on every event: an
// observation is a scan of 13 constants and two relaxed atomic increments — no lock, no
// allocation. Readers take a snapshot (Prometheus-style cumulative buckets) at any time; its
// count is the sum of its buckets, so `+Inf` always equals `count` even while threads observe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace corral {

class LatencyHistogram {
public:
  // Upper bounds in nanoseconds: 10 µs .. 100 ms (a fanotify decision takes tens of
  // microseconds; the reply bound defaults to 200 ms), then +Inf.
  static constexpr std::array<uint64_t, 13> kBoundsNs{
      10'000,    25'000,    50'000,     100'000,    250'000,    500'000,    1'000'000,
      2'500'000, 5'000'000, 10'000'000, 25'000'000, 50'000'000, 100'000'000};
  static constexpr size_t kBuckets = kBoundsNs.size() + 1; // the last one is +Inf

  struct Snapshot {
    std::array<uint64_t, kBuckets> cumulative{}; // observations <= kBoundsNs[i]; last: all
    uint64_t count = 0;
    uint64_t sum_ns = 0;
  };

  void observe(std::chrono::nanoseconds d) {
    const uint64_t ns = d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
    size_t i = 0;
    while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }

  [[nodiscard]] Snapshot snapshot() const {
    Snapshot s;
    uint64_t running = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative[i] = running;
    }
    s.count = running;
    s.sum_ns = sum_ns_.load(std::memory_order_relaxed);
    return s;
  }

private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

} // namespace corral
