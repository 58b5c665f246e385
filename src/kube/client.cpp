#include "kube/client.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <set>
#include <vector>

#include <curl/curl.h>

#include "core/strings.h"
#include "core/version.h"
#include "kube/bearer_token.h"
#include "kube/util.h"

namespace corral::kube {
namespace {

constexpr long kRequestTimeoutMs = 30'000;
constexpr long kConnectTimeoutMs = 30'000;
// TCP keepalive for watches, which may stay silent for minutes: the first probe after 30 s
// idle, then every 10 s; the kernel gives up after tcp_keepalive_probes (9) unanswered.
constexpr long kKeepIdleS = 30;
constexpr long kKeepIntervalS = 10;
// How long curl_multi_poll sleeps when nothing happens; cancel() and stop tokens wake it
// earlier with curl_multi_wakeup().
constexpr int kPollMs = 1000;
constexpr size_t kIdleHandles = 8;

// curl_global_init is not thread-safe and must run once per process, before any handle.
CURLcode global_init() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  return rc;
}

// An easy handle with the multi handle that drives it; the multi keeps the connection
// cache, so a pair is reused together and keeps its TLS connection alive.
struct Handles {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
};

// The state of one transfer, shared with curl's callbacks.
struct Transfer {
  CURL* easy = nullptr;
  const std::function<bool(std::string_view)>* on_line = nullptr; // null: keep the body whole
  const std::function<void(long)>* on_open = nullptr;
  std::atomic<bool> stop_asked{false};
  long status = 0;
  std::string body;
  std::string partial; // a streamed line not yet complete
  int retry_after_s = -1;
  bool consumer_stopped = false;

  bool streaming_lines() {
    if (on_line == nullptr) return false;
    if (status == 0) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
  }
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t.retry_after_s = -1;                      // a new response (after a 100 Continue, for example)
  } else if (line == "\r\n" || line == "\n") { // the end of a response's headers
    long status = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && t.on_open != nullptr && *t.on_open) (*t.on_open)(status);
  } else if (line.size() > 12 && to_lower(line.substr(0, 12)) == "retry-after:") {
    // Kubernetes sends delta-seconds (apiserver: retryAfterSeconds); an HTTP date is ignored.
    const std::string_view v = trim(line.substr(12));
    int s = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
    if (ec == std::errc() && end == v.data() + v.size() && s >= 0) t.retry_after_s = s;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t.stop_asked) return 0; // CURLE_WRITE_ERROR; the caller reports the cancellation
  if (!t.streaming_lines()) {
    t.body.append(data, len);
    return len;
  }
  t.partial.append(data, len);
  size_t start = 0;
  for (size_t nl = t.partial.find('\n'); nl != std::string::npos;
       nl = t.partial.find('\n', start)) {
    std::string_view line(t.partial.data() + start, nl - start);
    start = nl + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) continue;
    if (!(*t.on_line)(line)) {
      t.consumer_stopped = true;
      return 0;
    }
  }
  t.partial.erase(0, start);
  return len;
}

bool is_tls_error(CURLcode rc) {
  switch (rc) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ISSUER_ERROR: return true;
  default: return false;
  }
}

} // namespace

struct Client::Impl {
  explicit Impl(Config c) : config(std::move(c)), token(config.token_file, config.token) {}
  ~Impl() {
    for (const auto& h : idle) release(h);
  }

  Config config;
  BearerToken token;
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::set<CURLM*> active;   // guarded by mu: the transfers cancel() wakes
  std::vector<Handles> idle; // guarded by mu

  Result<Response> perform(const std::string& method, const std::string& path,
                           const std::string& body, const std::string& content_type,
                           const std::function<bool(std::string_view)>* on_line,
                           const std::function<void(long)>* on_open, const std::stop_token& stop);
  Result<Response> perform_once(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& content_type,
                                const std::function<bool(std::string_view)>* on_line,
                                const std::function<void(long)>* on_open,
                                const std::stop_token& stop);
  curl_slist* setup(CURL* e, const std::string& method, const std::string& url,
                    const std::string& body, const std::string& content_type,
                    const std::string& bearer, Transfer& t, char* errbuf) const;
  CURLcode run(const Handles& h, Transfer& t, const std::stop_token& stop, bool& aborted);
  Error transport_error(const std::string& what, CURLcode rc, const char* errbuf, CURL* e) const;

  Result<Handles> take();
  void give_back(const Handles& h);
  static void release(const Handles& h) {
    if (h.easy != nullptr) curl_easy_cleanup(h.easy);
    if (h.multi != nullptr) curl_multi_cleanup(h.multi);
  }
};

Result<Handles> Client::Impl::take() {
  {
    std::lock_guard lock(mu);
    if (!idle.empty()) {
      Handles h = idle.back();
      idle.pop_back();
      return h;
    }
  }
  Handles h{curl_easy_init(), curl_multi_init()};
  if (h.easy == nullptr || h.multi == nullptr) {
    release(h);
    return Error{"cannot create a libcurl handle (out of memory?)", "", ENOMEM};
  }
  return h;
}

void Client::Impl::give_back(const Handles& h) {
  std::lock_guard lock(mu);
  if (idle.size() < kIdleHandles) {
    idle.push_back(h);
  } else {
    release(h);
  }
}

curl_slist* Client::Impl::setup(CURL* e, const std::string& method, const std::string& url,
                                const std::string& body, const std::string& content_type,
                                const std::string& bearer, Transfer& t, char* errbuf) const {
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  // HTTP/1.1, one connection per watch: what the stand-in tests; a dead connection then ends
  // only the one watch that used it.
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  const std::string agent = std::string("corral/") + kVersion;
  curl_easy_setopt(e, CURLOPT_USERAGENT, agent.c_str()); // curl copies string options
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  if (t.on_line == nullptr) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, kRequestTimeoutMs);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, kKeepIdleS);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, kKeepIntervalS);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);

  // TLS: the peer's certificate chain must lead to the cluster CA, and its name must match.
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!config.ca_pem.empty() || !config.ca_file.empty()) {
    // Only the cluster CA, not also the system's store (Debian's libcurl has a CA path).
    curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    if (!config.ca_pem.empty()) {
      curl_blob blob{const_cast<char*>(config.ca_pem.data()), config.ca_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else {
      curl_easy_setopt(e, CURLOPT_CAINFO, config.ca_file.c_str());
    }
  }
  if (!config.client_cert_pem.empty()) {
    curl_blob blob{const_cast<char*>(config.client_cert_pem.data()), config.client_cert_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
  } else if (!config.client_cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, config.client_cert_file.c_str());
  }
  if (!config.client_key_pem.empty()) {
    curl_blob blob{const_cast<char*>(config.client_key_pem.data()), config.client_key_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
  } else if (!config.client_key_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLKEY, config.client_key_file.c_str());
  }

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:"); // no 100-continue round trip
  if (!bearer.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + bearer).c_str());
  if (method != "GET") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  return headers;
}

CURLcode Client::Impl::run(const Handles& h, Transfer& t, const std::stop_token& stop,
                           bool& aborted) {
  // Registered before `cancelled` is read, so a concurrent cancel() either is seen here or
  // finds this multi handle to wake.
  {
    std::lock_guard lock(mu);
    active.insert(h.multi);
  }
  CURLcode rc = CURLE_OK;
  {
    std::stop_callback on_stop(stop, [&] {
      t.stop_asked = true;
      curl_multi_wakeup(h.multi);
    });
    curl_multi_add_handle(h.multi, h.easy);
    int running = 1;
    while (true) {
      if (t.stop_asked || cancelled) {
        aborted = true;
        break;
      }
      if (curl_multi_perform(h.multi, &running) != CURLM_OK) {
        rc = CURLE_OUT_OF_MEMORY;
        break;
      }
      if (running == 0) break;
      curl_multi_poll(h.multi, nullptr, 0, kPollMs, nullptr);
    }
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(h.multi, &left))
      if (m->msg == CURLMSG_DONE) rc = m->data.result;
    curl_multi_remove_handle(h.multi, h.easy); // aborts the transfer if it is still running
  }
  std::lock_guard lock(mu);
  active.erase(h.multi);
  return rc;
}

Error Client::Impl::transport_error(const std::string& what, CURLcode rc, const char* errbuf,
                                    CURL* e) const {
  long os_errno = 0;
  curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
  const std::string why = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
  std::string hint;
  if (is_tls_error(rc)) {
    hint = "check the cluster CA and client certificate of the " + config.source + " config";
  } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
             rc == CURLE_OPERATION_TIMEDOUT) {
    hint = "is the API server at " + config.server + " up and reachable? (" + config.source + ")";
  }
  return Error{what + ": " + why, hint, static_cast<int>(os_errno)};
}

Result<Client::Response>
Client::Impl::perform_once(const std::string& method, const std::string& path,
                           const std::string& body, const std::string& content_type,
                           const std::function<bool(std::string_view)>* on_line,
                           const std::function<void(long)>* on_open, const std::stop_token& stop) {
  const std::string url = config.server + path;
  const std::string what = method + " " + url;
  if (cancelled) return Error{what + ": the client is shut down", "", ECANCELED};
  auto bearer = token.current();
  if (!bearer) return bearer.error();
  auto h = take();
  if (!h) return h.error();
  curl_easy_reset(h->easy);
  Transfer t;
  t.easy = h->easy;
  t.on_line = on_line;
  t.on_open = on_open;
  char errbuf[CURL_ERROR_SIZE] = {};
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      setup(h->easy, method, url, body, content_type, *bearer, t, errbuf), &curl_slist_free_all);
  bool aborted = false;
  const CURLcode rc = run(*h, t, stop, aborted);
  Result<Response> out = Response{};
  if (aborted) {
    out = Error{what + ": cancelled", "", ECANCELED};
  } else if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.consumer_stopped)) {
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &t.status);
    // A last line without its newline, at the clean end of a stream.
    if (rc == CURLE_OK && t.streaming_lines() && !trim(t.partial).empty()) (*on_line)(t.partial);
    out = Response{t.status, std::move(t.body), t.retry_after_s};
  } else {
    out = transport_error(what, rc, errbuf, h->easy);
  }
  // Unset the pointers into this frame before the handle goes back to the pool.
  curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, nullptr);
  give_back(*h);
  return out;
}

Result<Client::Response> Client::Impl::perform(const std::string& method, const std::string& path,
                                               const std::string& body,
                                               const std::string& content_type,
                                               const std::function<bool(std::string_view)>* on_line,
                                               const std::function<void(long)>* on_open,
                                               const std::stop_token& stop) {
  auto r = perform_once(method, path, body, content_type, on_line, on_open, stop);
  // A 401 may mean the token file was rotated between our stat and the server's check (or
  // within one mtime tick): read it again and retry once.
  if (r && r->status == 401 && token.reload())
    r = perform_once(method, path, body, content_type, on_line, on_open, stop);
  return r;
}

Result<std::unique_ptr<Client>> Client::make(Config config) {
  const std::string from = " (" + config.source + ")";
  if (!config.server.starts_with("https://") && !config.server.starts_with("http://"))
    return Error{"Kubernetes API server \"" + config.server + "\" is not an http(s) URL" + from,
                 "e.g. https://192.0.2.1:6443"};
  while (config.server.ends_with('/')) config.server.pop_back();
  const auto pem_check = [&](const std::string& pem, const std::string& file,
                             const std::string& what) -> Result<void> {
    std::string text = pem;
    if (text.empty() && !file.empty()) {
      auto r = read_text_file(file, what);
      if (!r) return Error{r.error().message + from, "", r.error().err};
      text = std::move(*r);
    }
    if (!text.empty() && text.find("-----BEGIN ") == std::string::npos)
      return Error{what + " " + (file.empty() ? "(inline)" : file) + " is not PEM" + from,
                   "expected -----BEGIN ...----- blocks"};
    return {};
  };
  if (auto r = pem_check(config.ca_pem, config.ca_file, "the cluster CA"); !r) return r.error();
  if (auto r = pem_check(config.client_cert_pem, config.client_cert_file, "the client certificate");
      !r)
    return r.error();
  if (auto r = pem_check(config.client_key_pem, config.client_key_file, "the client key"); !r)
    return r.error();
  if (const CURLcode rc = global_init(); rc != CURLE_OK)
    return Error{std::string("cannot initialise libcurl: ") + curl_easy_strerror(rc), ""};
  auto impl = std::make_unique<Impl>(std::move(config));
  if (auto t = impl->token.current(); !t) return Error{t.error().message + from, t.error().hint};
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<Client::Response> Client::request(const std::string& method,
                                         const std::string& path_and_query, const std::string& body,
                                         const std::string& content_type,
                                         const std::stop_token& stop) {
  return impl_->perform(method, path_and_query, body, content_type, nullptr, nullptr, stop);
}

Result<Client::Response> Client::stream(const std::string& path_and_query,
                                        const std::function<bool(std::string_view)>& on_line,
                                        const std::stop_token& stop,
                                        const std::function<void(long)>& on_open) {
  return impl_->perform("GET", path_and_query, "", "", &on_line, &on_open, stop);
}

void Client::cancel() {
  impl_->cancelled = true;
  std::lock_guard lock(impl_->mu);
  for (CURLM* m : impl_->active) curl_multi_wakeup(m);
}

const Config& Client::config() const {
  return impl_->config;
}

} // namespace corral::kube
