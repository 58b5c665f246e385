#include "kube/reflector.h"

#include <ctime>
#include <stdexcept>

#include "kube/reflector_impl.h"

namespace corral::kube {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMinBackoff{100};
// While requests keep failing, repeat the failure in the log at most this often.
constexpr auto kFailureLogEvery = std::chrono::seconds(30);
// A short interruption (a dropped watch resumed at once) is not worth a "recovered" line.
constexpr auto kQuietRecovery = std::chrono::seconds(1);
// An upper bound on a server's Retry-After, so that a bogus value cannot park the reflector.
constexpr int kMaxRetryAfterS = 300;

bool sleep_for(milliseconds d, const std::stop_token& stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

} // namespace

std::string describe_response(long status, const std::string& body) {
  std::string out = "HTTP " + std::to_string(status);
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.value("kind", "") == "Status") {
    if (j.contains("reason") && j["reason"].is_string())
      out += " " + j["reason"].get<std::string>();
    if (j.contains("message") && j["message"].is_string())
      out += ": " + j["message"].get<std::string>();
  }
  return out;
}

void Reflector::Impl::run() {
  const std::stop_token stop = stopper.get_token();
  Step step{Step::List};
  while (step.next != Step::Stop && !stop.stop_requested()) {
    step = step.next == Step::List ? list(stop) : watch(stop);
    if (step.wait.count() > 0 && !sleep_for(step.wait, stop)) break;
  }
}

Reflector::Impl::ms Reflector::Impl::backoff() {
  const ms cap = std::max(opts.max_backoff, ms(1));
  if (next_backoff.count() == 0) next_backoff = std::min(kMinBackoff, cap);
  const ms d = next_backoff;
  next_backoff = std::min(next_backoff * 2, cap);
  return d;
}

Reflector::Impl::ms Reflector::Impl::failed(const std::string& why, int retry_after_s,
                                            bool at_once) {
  ms wait{0};
  if (!at_once)
    wait = retry_after_s >= 0 ? ms(1000LL * std::min(retry_after_s, kMaxRetryAfterS)) : backoff();
  {
    std::lock_guard lock(mu);
    st.connected = false;
    st.last_error = why;
  }
  const auto now = Clock::now();
  ++failures;
  if (!failing) {
    failing = true;
    failing_since = now;
  } else if (now - last_failure_log < kFailureLogEvery) {
    return wait;
  }
  last_failure_log = now;
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - failing_since).count();
  log(why +
      (failures > 1
           ? " (" + std::to_string(failures) + " failures in " + std::to_string(secs) + " s)"
           : std::string()) +
      (at_once ? "; retrying at once" : "; retrying in " + std::to_string(wait.count()) + " ms"));
  return wait;
}

void Reflector::Impl::healthy() {
  {
    std::lock_guard lock(mu);
    st.connected = true;
    st.last_error.clear();
  }
  next_backoff = ms(0);
  if (!failing) return;
  const auto took = Clock::now() - failing_since;
  if (failures > 1 || took >= kQuietRecovery)
    log("connected again after " + std::to_string(failures) + " failed requests in " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(took).count()) + " s");
  failing = false;
  failures = 0;
}

void Reflector::Impl::log(const std::string& msg) const {
  if (opts.log) opts.log("kube " + opts.path + ": " + msg);
}

void Reflector::Impl::set_rv(std::string v) {
  std::lock_guard lock(mu);
  if (!v.empty()) rv = st.resource_version = std::move(v);
  st.last_sync_unix = static_cast<int64_t>(std::time(nullptr));
}

Result<std::unique_ptr<Reflector>> Reflector::start(Client& client, Options options) {
  const std::string what = "kube reflector for " + options.path + ": ";
  if (!options.path.starts_with("/") || options.path.find('?') != std::string::npos)
    return Error{what + "the path must be a collection's path, without a query",
                 "e.g. /api/v1/pods; put selectors in field_selector"};
  if (!options.replace || !options.event)
    return Error{what + "the replace and event callbacks are required", ""};
  if (options.page_size == 0) return Error{what + "page_size must be at least 1", ""};
  if (options.watch_timeout.count() <= 0)
    return Error{what + "watch_timeout must be at least 1 s", ""};
  auto impl = std::make_unique<Impl>(client, std::move(options));
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Reflector>(new Reflector(std::move(impl)));
}

Reflector::Reflector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Reflector::~Reflector() {
  stop();
}

void Reflector::stop() {
  if (!impl_->thread.joinable()) return;
  if (impl_->thread.get_id() == std::this_thread::get_id())
    throw std::logic_error("Reflector::stop() called from one of its callbacks");
  // Wakes a backoff sleep, and aborts the request or watch in flight (Client's stop token).
  impl_->stopper.request_stop();
  impl_->thread.join();
}

Reflector::Status Reflector::status() const {
  std::lock_guard lock(impl_->mu);
  return impl_->st;
}

} // namespace corral::kube
