#include "events/otlp.h"

#include <algorithm>
#include <random>

#include <curl/curl.h>

namespace corral::events {
namespace {

using std::chrono::milliseconds;

// OTLP/HTTP's retry advice: exponential backoff with jitter, here 0.5 s doubling to 30 s.
constexpr milliseconds kFirstBackoff{500};
constexpr milliseconds kMaxBackoff{30000};
constexpr std::chrono::seconds kMaxRetryAfter{300}; // a receiver's Retry-After, bounded
constexpr std::chrono::minutes kReportEvery{1};
constexpr size_t kMaxResponseBody = 64 * 1024;

void curl_init_once() {
  // curl_global_init must run before any handle; libcurl >= 7.84 makes it thread-safe.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)rc;
}

int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

uint64_t unix_nanos_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The records a 2xx answer says were rejected (ExportLogsServiceResponse.partialSuccess,
// OTLP/HTTP spec); whatever the receiver wrote, never an exception.
uint64_t rejected_records(const std::string& body, std::string* message) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("partialSuccess") || !j["partialSuccess"].is_object()) return 0;
  const auto& p = j["partialSuccess"];
  if (p.contains("errorMessage") && p["errorMessage"].is_string())
    *message = p["errorMessage"].get<std::string>();
  if (!p.contains("rejectedLogRecords")) return 0;
  const auto& v = p["rejectedLogRecords"]; // int64: a string in JSON, a number from some
  if (v.is_string()) return std::strtoull(v.get<std::string>().c_str(), nullptr, 10);
  return v.is_number_unsigned() ? v.get<uint64_t>() : 0;
}

} // namespace

Result<std::string> otlp_logs_url(const std::string& endpoint) {
  curl_init_once();
  const std::string hint = "an http(s) URL of an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318 "
                           "- records are POSTed to its /v1/logs";
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, endpoint.c_str(), 0) != CURLUE_OK)
    return Error{endpoint + ": not a URL", hint};
  const auto part = [&](CURLUPart which) {
    char* p = nullptr;
    std::string s;
    if (curl_url_get(u.get(), which, &p, 0) == CURLUE_OK && p != nullptr) s = p;
    curl_free(p);
    return s;
  };
  const std::string scheme = part(CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https")
    return Error{endpoint + ": the scheme is " + scheme + ", OTLP/HTTP needs http or https", hint};
  if (part(CURLUPART_HOST).empty()) return Error{endpoint + ": no host", hint};
  if (const std::string path = part(CURLUPART_PATH); path.empty() || path == "/")
    curl_url_set(u.get(), CURLUPART_PATH, "/v1/logs", 0);
  return part(CURLUPART_URL);
}

// One keep-alive connection to the receiver, used by the sender thread only.
struct OtlpExporter::Client {
  struct Response {
    CURLcode code = CURLE_OK;
    std::string error; // curl's, when code != CURLE_OK
    long status = 0;
    std::string body;
    long retry_after_s = -1; // -1: none
  };

  CURL* easy = curl_easy_init();
  curl_slist* headers = nullptr;
  const std::atomic<int64_t>* stop_deadline_ns = nullptr;

  ~Client() {
    curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }

  // Aborts a transfer that outlives the exporter's stop bound.
  static int on_progress(void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto* c = static_cast<Client*>(p);
    const int64_t deadline = c->stop_deadline_ns->load();
    return deadline != 0 && steady_ns(Clock::now()) > deadline ? 1 : 0;
  }
  static size_t on_body(char* data, size_t size, size_t n, void* p) {
    auto* r = static_cast<Response*>(p);
    r->body.append(
        data, std::min(size * n, kMaxResponseBody - std::min(kMaxResponseBody, r->body.size())));
    return size * n;
  }
  static size_t on_header(char* data, size_t size, size_t n, void* p) {
    auto* r = static_cast<Response*>(p);
    const std::string_view h(data, size * n);
    constexpr std::string_view kName = "retry-after:";
    if (h.size() > kName.size()) {
      std::string lower(h.substr(0, kName.size()));
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      // Seconds only; an HTTP-date falls back to our own backoff.
      if (lower == kName) r->retry_after_s = std::strtol(data + kName.size(), nullptr, 10);
    }
    return size * n;
  }

  void setup(const std::string& url, milliseconds timeout) {
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    // No "Expect: 100-continue" round trip before each body.
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  }

  Response post(const std::string& body) {
    Response r;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &r);
    r.code = curl_easy_perform(easy);
    if (r.code != CURLE_OK) {
      r.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(r.code);
    } else {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
    }
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
    return r;
  }
};

Result<std::unique_ptr<OtlpExporter>> OtlpExporter::start(Options options) {
  auto url = otlp_logs_url(options.endpoint);
  if (!url) return url.error();
  std::unique_ptr<OtlpExporter> e(new OtlpExporter(std::move(options), std::move(*url)));
  if (e->client_->easy == nullptr) return Error{"OTLP exporter: curl_easy_init failed", ""};
  e->sender_ = std::thread([p = e.get()] { p->run(); });
  return e;
}

OtlpExporter::OtlpExporter(Options options, std::string url)
    : options_(std::move(options)), url_(std::move(url)), client_(std::make_unique<Client>()) {
  client_->stop_deadline_ns = &stop_deadline_ns_;
  client_->setup(url_, options_.request_timeout);
}

OtlpExporter::~OtlpExporter() {
  stop();
}

void OtlpExporter::offer(const Alert& a) {
  {
    const std::lock_guard lock(mu_);
    if (stopping_ || buffer_.size() >= options_.buffer_capacity) {
      ++stats_.dropped;
      return;
    }
    buffer_.push_back(a);
    // The first event starts the sender's flush timer; a full batch leaves at once.
    if (buffer_.size() != 1 && buffer_.size() < options_.max_batch) return;
  }
  cv_.notify_one();
}

OtlpExporter::Stats OtlpExporter::stats() const {
  const std::lock_guard lock(mu_);
  return stats_;
}

void OtlpExporter::stop() {
  {
    const std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    stop_deadline_ns_ = steady_ns(Clock::now() + options_.shutdown_timeout);
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  const std::lock_guard lock(mu_);
  stats_.dropped += buffer_.size(); // what the bound left unsent
  buffer_.clear();
}

void OtlpExporter::report(const std::string& msg) {
  if (!options_.log) return;
  std::string line;
  {
    const std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (last_report_ != Clock::time_point{} && now - last_report_ < kReportEvery) {
      ++suppressed_reports_;
      return;
    }
    last_report_ = now;
    line = "OTLP export to " + url_ + ": " + msg;
    if (suppressed_reports_ > 0)
      line +=
          " (" + std::to_string(suppressed_reports_) + " more such messages in the last minute)";
    suppressed_reports_ = 0;
  }
  options_.log(line);
}

void OtlpExporter::run() {
  std::unique_lock lock(mu_);
  while (true) {
    // A batch leaves when it is full, when its oldest event waited flush_interval, or at stop.
    if (buffer_.empty()) cv_.wait(lock, [&] { return stopping_ || !buffer_.empty(); });
    if (buffer_.empty() && stopping_) return;
    cv_.wait_for(lock, options_.flush_interval,
                 [&] { return stopping_ || buffer_.size() >= options_.max_batch; });
    if (stopping_ && Clock::now() >= stop_deadline()) return; // stop() counts what is left
    const size_t n = std::min(buffer_.size(), options_.max_batch);
    std::vector<Alert> batch(std::make_move_iterator(buffer_.begin()),
                             std::make_move_iterator(buffer_.begin() + static_cast<long>(n)));
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<long>(n));
    lock.unlock();
    send(batch);
    lock.lock();
  }
}

void OtlpExporter::send(const std::vector<Alert>& batch) {
  const OtlpIdentity id{options_.service_name, options_.host_name, options_.cluster_name};
  const std::string body = otlp_logs_body(batch, id, unix_nanos_now());
  std::mt19937 rng(std::random_device{}());
  milliseconds backoff = kFirstBackoff;
  while (true) {
    const auto r = client_->post(body);
    if (r.code == CURLE_OK && r.status >= 200 && r.status < 300) {
      std::string message;
      const uint64_t rejected =
          std::min<uint64_t>(rejected_records(r.body, &message), batch.size());
      if (rejected > 0)
        report("the receiver rejected " + std::to_string(rejected) + " records: " + message);
      const std::lock_guard lock(mu_);
      stats_.exported += batch.size() - rejected;
      stats_.dropped += rejected;
      return;
    }
    const bool retryable = r.code != CURLE_OK || r.status == 429 || r.status == 502 ||
                           r.status == 503 || r.status == 504;
    const std::string what = r.code != CURLE_OK
                                 ? r.error
                                 : "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
    {
      const std::lock_guard lock(mu_);
      ++stats_.failed_requests;
    }
    if (!retryable) {
      drop(batch.size());
      return report(what + "; " + std::to_string(batch.size()) +
                    " records dropped (the receiver refuses them, they are not sent again)");
    }
    report(what + "; retrying (new events wait in a buffer of " +
           std::to_string(options_.buffer_capacity) + ")");
    // Jitter (50..100% of the backoff) keeps many agents from retrying in step.
    auto wait = milliseconds(
        std::uniform_int_distribution<int64_t>(backoff.count() / 2, backoff.count())(rng));
    // The receiver's Retry-After, bounded both ways (a 0 would make a busy loop).
    if (r.retry_after_s >= 0)
      wait = std::max<milliseconds>(kFirstBackoff, std::chrono::seconds(std::min<long>(
                                                       r.retry_after_s, kMaxRetryAfter.count())));
    backoff = std::min(backoff * 2, kMaxBackoff);
    const auto until = Clock::now() + wait;
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, until, [&] { return stopping_; });
    if (stopping_) {
      // Stopping: retries go on until the stop bound only.
      const auto deadline = stop_deadline();
      cv_.wait_until(lock, std::min(until, deadline), [] { return false; });
      if (Clock::now() >= deadline) {
        stats_.dropped += batch.size();
        return;
      }
    }
    ++stats_.retries;
  }
}

void OtlpExporter::drop(size_t n) {
  const std::lock_guard lock(mu_);
  stats_.dropped += n;
}

OtlpExporter::Clock::time_point OtlpExporter::stop_deadline() const {
  const int64_t ns = stop_deadline_ns_.load();
  return ns == 0 ? Clock::time_point::max()
                 : Clock::time_point(
                       std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

} // namespace corral::events
