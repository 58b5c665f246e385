// The reflector's state and steps, shared by reflector.cpp (lifecycle, status, logging,
// backoff) and reflector_loop.cpp (list and watch). Not part of the interface.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>

#include "kube/reflector.h"

namespace corral::kube {

struct Reflector::Impl {
  using Clock = std::chrono::steady_clock;
  using ms = std::chrono::milliseconds;

  Impl(Client& c, Options o) : client(c), opts(std::move(o)), rng(std::random_device{}()) {}

  Client& client;
  const Options opts;
  std::stop_source stopper;
  std::thread thread;

  mutable std::mutex mu; // guards st
  Status st;

  // What to do next, and how long to wait before it.
  struct Step {
    enum Next { List, Watch, Stop } next;
    ms wait{0};
  };

  // The thread's own state.
  std::string rv; // the last resourceVersion seen (a list's, an event's or a bookmark's)
  uint64_t lists_started = 0, watches_started = 0;
  ms next_backoff{0};
  std::mt19937_64 rng;
  bool failing = false;
  uint64_t failures = 0;
  Clock::time_point failing_since, last_failure_log;

  void run();
  Step list(const std::stop_token& stop);
  Step watch(const std::stop_token& stop);

  // A failed request (transport error, or an HTTP status the step cannot use): records it,
  // logs it unless the same outage was logged recently, and returns how long to wait:
  // nothing when `at_once`, else the server's Retry-After when given, else the next backoff.
  ms failed(const std::string& why, int retry_after_s = -1, bool at_once = false);
  void healthy(); // a request succeeded: connected, no error, backoff reset
  ms backoff();   // the next backoff: 100 ms doubling up to opts.max_backoff
  void log(const std::string& msg) const;
  void set_rv(std::string v);       // a new resourceVersion seen (and the time it was)
  std::string query_suffix() const; // &fieldSelector=… or ""
};

// "HTTP 500 InternalError: message" from a response carrying a Kubernetes Status.
std::string describe_response(long status, const std::string& body);

} // namespace corral::kube
