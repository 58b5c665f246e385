// An HTTPS client of the Kubernetes API (libcurl): one request, or one streaming watch, at a
// time per calling thread, from as many threads as needed.
#pragma once

#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/result.h"
#include "kube/config.h"

namespace corral::kube {

class Client {
public:
  // Checks the config (server URL, readable CA/credential files, a certificate with its key);
  // connects only when a request is made.
  static Result<std::unique_ptr<Client>> make(Config config);
  ~Client(); // no call may be in flight (stop the reflectors that use it first)
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  struct Response {
    long status = 0; // HTTP status
    std::string body;
    int retry_after_s = -1; // Retry-After header when present
  };

  // One request; thread-safe (each call uses its own curl handle). A transport failure
  // (refused, TLS, reset, timeout 30 s) is an Error; any HTTP status is a Response. A 401
  // re-reads the token file and retries once. `stop` (optional) aborts this call only: it
  // then returns an Error with err ECANCELED.
  Result<Response> request(const std::string& method, const std::string& path_and_query,
                           const std::string& body = "",
                           const std::string& content_type = "application/json",
                           const std::stop_token& stop = {});

  // A streaming GET (watch): on_line gets each newline-delimited line of a 2xx response as it
  // arrives; return false from on_line to end the stream. Returns when the server ends the
  // stream (a Response, status 200), on a transport error (an Error, also when the server drops
  // the connection mid-stream), when on_line says stop (a Response), or after cancel() or
  // `stop` (an Error with err ECANCELED). A non-2xx answer is a Response with its body, and
  // on_line is not called. TCP keepalive is on so that a silently dead peer is noticed.
  // on_open (optional) is called with the status once a 2xx response's headers are in, before
  // any line: a watch that stays silent is then known to be open.
  Result<Response> stream(const std::string& path_and_query,
                          const std::function<bool(std::string_view)>& on_line,
                          const std::stop_token& stop = {},
                          const std::function<void(long status)>& on_open = {});

  // Aborts every transfer in flight and makes later calls fail at once (for shutdown).
  void cancel();
  const Config& config() const;

private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace corral::kube
