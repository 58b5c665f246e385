// The events a monitor under test delivered, for the tests to wait on and look through.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "monitor/monitor.h"

namespace corral::monitor {

struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;

  // Options whose on_event records here.
  Monitor::Options options() {
    Monitor::Options o;
    o.on_event = [this](const Event& e) {
      std::lock_guard lock(mu);
      events.push_back(e);
      cv.notify_all();
    };
    return o;
  }

  // Waits (5 s at most) for an event of `kind` for process `tgid`; returns the last one.
  std::optional<Event> wait(Kind kind, int tgid) {
    std::unique_lock lock(mu);
    std::optional<Event> found;
    cv.wait_for(lock, std::chrono::seconds(5), [&] {
      for (const auto& e : events)
        if (e.kind == kind && e.process.tgid == tgid) found = e;
      return found.has_value();
    });
    return found;
  }

  // The events of `kind` for process `tgid` so far, in order.
  std::vector<Event> of(Kind kind, int tgid) {
    std::lock_guard lock(mu);
    std::vector<Event> out;
    for (const auto& e : events)
      if (e.kind == kind && e.process.tgid == tgid) out.push_back(e);
    return out;
  }

  // The first event of `kind` for `tgid` that `match` accepts, so far.
  std::optional<Event> find(Kind kind, int tgid, const std::function<bool(const Event&)>& match) {
    for (auto& e : of(kind, tgid))
      if (match(e)) return e;
    return std::nullopt;
  }
};

} // namespace corral::monitor
