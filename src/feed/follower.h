// Reads one server's corral.api.Events stream (a corrald --grpc-listen or a corral-relay) and
// keeps reading: on a broken stream it reconnects, with backoff, and resumes after the last
// sequence number had from each node, so that what the server still buffers arrives once.
// Positions may be shared by several followers (corral-relay's, one per agent): an event is
// taken only if it is newer than what any of them took from its node.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "events/alert.h"
#include "feed/tls.h"

namespace corral::feed {

// Per node (HostName), the newest sequence number taken.
class Positions {
public:
  std::map<std::string, uint64_t> snapshot() const;
  void seed(const std::map<std::string, uint64_t>& newest); // nodes not yet known only
  // Calls take(a) (under the lock, so one node's events keep their order) if `a` is newer
  // than its node's position, which then moves; returns take's result, or true if skipped.
  bool offer(events::Alert&& a, const std::function<bool(events::Alert&&)>& take);

private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> newest_;
};

class Follower {
public:
  struct Options {
    std::string target; // HOST:PORT
    TlsFiles tls;
    std::string tls_flags = "--tls"; // names the TLS flags in errors
    std::string filter = "all";      // policy | system | all
    bool from_now = false;           // the first connection: only events from now on
    std::function<void(const std::string&)> log;
    std::chrono::milliseconds max_backoff{5000};
  };
  enum class End { kStopped, kUnreachable, kUnimplemented, kRejected };

  explicit Follower(Options o) : o_(std::move(o)) {}
  // Streams into `take` until stop() or take returns false. Until a first stream starts,
  // a failure ends it (kUnreachable, kUnimplemented: a KubeArmor agent, kRejected: a bad
  // request or TLS material) unless `keep_trying`; after, it reconnects until stopped.
  End run(Positions& positions, const std::function<bool(events::Alert&&)>& take, bool keep_trying,
          std::string* error);
  void stop();
  [[nodiscard]] bool connected() const { return connected_; }

private:
  Options o_;
  std::atomic<bool> stopping_{false}, connected_{false};
  std::mutex mu_;
  grpc::ClientContext* ctx_ = nullptr; // the stream in progress, for stop()
};

} // namespace corral::feed
