// Alerts and logs as OpenTelemetry log records, sent to an OTLP/HTTP receiver in the JSON
// encoding (opentelemetry-proto ExportLogsServiceRequest, POST with application/json).
// Used by corrald (--otlp-endpoint) and meant for a relay too: a plain interface, no agent
// types. offer() never blocks: events wait in a bounded buffer for one sender thread, which
// sends batches and retries what the receiver could not take (OTLP/HTTP's retryable answers).
//
// Severity (OTel's SeverityNumber): an alert whose Action is Block, or whose access was not
// Passed (denied, killed), is WARN (13); other alerts (Audit, Allow) and logs are INFO (9).
// KubeArmor's own Severity (1..10 of the policy) stays an attribute.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "events/alert.h"

namespace corral::events {

// What names the sender in every resource (besides each event's workload).
struct OtlpIdentity {
  std::string service_name = "corral";
  std::string host_name, cluster_name; // used where an event has none
};

// The ExportLogsServiceRequest of `batch`: one resourceLogs entry per distinct resource
// (host, cluster, namespace, pod, container), in order of first appearance.
nlohmann::json otlp_logs_request(std::span<const Alert> batch, const OtlpIdentity& identity,
                                 uint64_t observed_unix_nanos);

// The event's time in unix nanoseconds: its UpdatedTime (RFC3339, microseconds), else its
// Timestamp (seconds), else 0 (OTLP: unknown).
uint64_t otlp_time_unix_nanos(const Alert& a);

// That request as the bytes sent: text that is not UTF-8 (a command line can hold any bytes)
// is replaced with U+FFFD, as JSON must be UTF-8.
std::string otlp_logs_body(std::span<const Alert> batch, const OtlpIdentity& identity,
                           uint64_t observed_unix_nanos);

// Where records are POSTed: an http(s) URL without a path (or "/") gets OTLP's /v1/logs,
// as OTLP exporters do with a base endpoint; a URL with a path is used as it is.
Result<std::string> otlp_logs_url(const std::string& endpoint);

class OtlpExporter {
public:
  struct Options {
    std::string endpoint; // http(s)://host:port[/path]
    std::string service_name = "corral";
    std::string host_name, cluster_name;
    size_t max_batch = 512;                         // records in one request at most
    std::chrono::milliseconds flush_interval{1000}; // an event waits this long at most
    size_t buffer_capacity = 65536; // events waiting; beyond it they are dropped (counted)
    std::chrono::seconds request_timeout{10};
    std::chrono::milliseconds shutdown_timeout{2000}; // the final flush's bound
    std::function<void(const std::string&)> log;      // operational messages, rate-limited
  };
  struct Stats {
    uint64_t exported = 0;        // records a receiver accepted
    uint64_t dropped = 0;         // buffer full, rejected by the receiver, or left at stop
    uint64_t failed_requests = 0; // requests that did not succeed (retried ones included)
    uint64_t retries = 0;
  };

  // Validates the endpoint (see otlp_logs_url) and starts the sender thread.
  static Result<std::unique_ptr<OtlpExporter>> start(Options options);
  ~OtlpExporter(); // stop()
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  void offer(const Alert& a); // never blocks on the network
  [[nodiscard]] Stats stats() const;
  [[nodiscard]] const std::string& url() const { return url_; }
  // Sends what is buffered within shutdown_timeout, then ends the sender; events offered
  // afterwards are dropped. Idempotent.
  void stop();

private:
  OtlpExporter(Options options, std::string url);
  void run();
  // Sends one batch until it is taken, refused, or the exporter stops.
  void send(const std::vector<Alert>& batch);
  void report(const std::string& msg); // Options::log, at most once a minute
  void drop(size_t n);
  using Clock = std::chrono::steady_clock;
  [[nodiscard]] Clock::time_point stop_deadline() const; // max() while running
  struct Client;

  const Options options_;
  const std::string url_;
  std::unique_ptr<Client> client_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Alert> buffer_;
  bool stopping_ = false;
  std::atomic<int64_t> stop_deadline_ns_{0}; // steady clock; 0 while running
  Stats stats_;
  std::chrono::steady_clock::time_point last_report_{};
  uint64_t suppressed_reports_ = 0;
  std::thread sender_;
};

} // namespace corral::events
