// Keeps a consumer in step with one collection of the Kubernetes API, with client-go's
// reflector semantics (tools/cache/reflector.go): list in pages, then watch from the list's
// resourceVersion; resume a dropped or ended watch from the last resourceVersion seen; list
// again only when that resourceVersion has expired (410); retry everything else forever.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "kube/client.h"

namespace corral::kube {

enum class EventType { Added, Modified, Deleted };

class Reflector {
public:
  struct Options {
    // Collection, e.g. "/api/v1/pods" or "/apis/security.kubearmor.com/v1/kubearmorpolicies"
    // (no query string).
    std::string path;
    std::string field_selector; // e.g. "spec.nodeName=node-a" (sent URL-encoded)
    size_t page_size = 500;     // list pages with limit/continue
    // Called on the reflector's thread after every complete list (the first, and every relist)
    // with all objects listed: the consumer applies what changed and deletes what vanished.
    // Never called with a partial list. Items carry kind and apiVersion (a list's items of a
    // built-in type have none on the wire; they are filled in from the list's).
    std::function<void(std::vector<nlohmann::json>&& items)> replace;
    // Watch events (not BOOKMARK), on the reflector's thread, in the server's order.
    std::function<void(EventType, nlohmann::json&& object)> event;
    std::function<void(const std::string&)> log; // operational messages; may be empty
    // Reconnect backoff cap (so a change made during an outage is applied within 3 s after it
    // ends); the backoff starts at 100 ms and doubles.
    std::chrono::milliseconds max_backoff{1000};
    // timeoutSeconds sent with each watch, randomised in [t, 2t) like client-go.
    std::chrono::seconds watch_timeout{300};
  };
  struct Status {
    bool synced = false;         // a complete list was delivered at least once
    bool connected = false;      // the last request succeeded and a watch is open (or being opened)
    int64_t last_sync_unix = 0;  // time of the last successful list or watch event/bookmark
    uint64_t watch_restarts = 0; // watch requests after the first one
    uint64_t relists = 0;        // lists started after the first (410 Expired, or list errors)
    std::string resource_version; // last seen
    std::string last_error;       // "" when healthy
  };

  // Checks the options and starts the reflector's thread. The client must outlive it.
  static Result<std::unique_ptr<Reflector>> start(Client& client, Options options);
  ~Reflector(); // stop()
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Ends the thread (cancels the request or watch in flight); no callback runs after it
  // returns. Idempotent; must not be called from a callback.
  void stop();
  Status status() const;

private:
  struct Impl;
  explicit Reflector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace corral::kube
