// The reflector's two steps, as client-go's Reflector.ListAndWatch takes them: a paginated
// list (tools/pager), then watches resumed from the last resourceVersion seen.
#include <random>

#include "kube/reflector_impl.h"
#include "kube/util.h"

namespace corral::kube {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A watch that ends sooner than this without a single event is retried after a backoff,
// not at once (client-go's "very short watch" check), so a server that closes every watch
// at once cannot make the reflector spin.
constexpr auto kShortWatch = std::chrono::seconds(1);

std::string rv_of(const json& obj) {
  const auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return {};
  const auto rv = meta->find("resourceVersion");
  return rv != meta->end() && rv->is_string() ? rv->get<std::string>() : std::string();
}

std::string string_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The status line of a failed request, with what to check for the usual causes.
std::string failure(const std::string& verb, const Client::Response& r) {
  std::string out = verb + ": " + describe_response(r.status, r.body);
  if (r.status == 401) out += " (is the bearer token valid? it is re-read when its file changes)";
  if (r.status == 403) out += " (do the service account's RBAC rules allow " + verb + "?)";
  return out;
}

bool retry_same_step(long status) {
  return status == 401 || status == 403 || status == 429 || status >= 500;
}

} // namespace

std::string Reflector::Impl::query_suffix() const {
  return opts.field_selector.empty() ? std::string()
                                     : "&fieldSelector=" + url_encode(opts.field_selector);
}

Reflector::Impl::Step Reflector::Impl::list(const std::stop_token& stop) {
  const auto count_list = [this] {
    if (lists_started++ == 0) return;
    std::lock_guard lock(mu);
    ++st.relists;
  };
  count_list();
  std::vector<json> items;
  std::string cont, list_rv;
  size_t pages = 0;
  while (true) {
    std::string q = opts.path + "?limit=" + std::to_string(opts.page_size) + query_suffix();
    if (!cont.empty()) q += "&continue=" + url_encode(cont);
    auto r = client.request("GET", q, "", "application/json", stop);
    if (stop.stop_requested()) return {Step::Stop};
    if (!r) return {Step::List, failed("list: " + r.error().to_string())};
    if (r->status == 410 && !cont.empty()) {
      // The snapshot behind the continue token was compacted: only a new list is consistent.
      log("list: the continue token expired after " + std::to_string(pages) +
          " pages; listing again from the start");
      items.clear();
      cont.clear();
      pages = 0;
      count_list();
      continue;
    }
    if (r->status != 200) return {Step::List, failed(failure("list", *r), r->retry_after_s)};
    auto page = json::parse(r->body, nullptr, false);
    if (!page.is_object() || !page.contains("items") ||
        !(page["items"].is_array() || page["items"].is_null()))
      return {Step::List, failed("list: the answer of GET " + q + " is not a Kubernetes list")};
    // Items of built-in lists carry no kind/apiVersion on the wire; watch events' objects do.
    std::string kind = string_field(page, "kind");
    if (kind.ends_with("List")) kind.resize(kind.size() - 4);
    const std::string api_version = string_field(page, "apiVersion");
    for (auto& item : page["items"]) {
      if (!item.is_object()) continue;
      if (!item.contains("kind") && !kind.empty()) item["kind"] = kind;
      if (!item.contains("apiVersion") && !api_version.empty()) item["apiVersion"] = api_version;
      items.push_back(std::move(item));
    }
    ++pages;
    list_rv = rv_of(page);
    cont = page.contains("metadata") ? string_field(page["metadata"], "continue") : "";
    if (cont.empty()) break;
  }
  healthy();
  const size_t n = items.size();
  set_rv(list_rv);
  opts.replace(std::move(items));
  {
    std::lock_guard lock(mu);
    st.synced = true;
  }
  log("listed " + std::to_string(n) + " objects in " + std::to_string(pages) +
      " pages at resourceVersion " + list_rv);
  return {Step::Watch};
}

// One watch, from rv until it ends. Its events are handled as they arrive.
Reflector::Impl::Step Reflector::Impl::watch(const std::stop_token& stop) {
  if (watches_started++ > 0) {
    std::lock_guard lock(mu);
    ++st.watch_restarts;
  }
  // client-go: timeoutSeconds = minWatchTimeout * (1 + rand[0,1)), which spreads the
  // re-watches of many clients over time.
  std::uniform_real_distribution<double> spread(0.0, 1.0);
  const auto timeout =
      static_cast<long long>(static_cast<double>(opts.watch_timeout.count()) * (1.0 + spread(rng)));
  const std::string q = opts.path + "?watch=1&resourceVersion=" + url_encode(rv) +
                        "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout) +
                        query_suffix();
  const std::string from_rv = rv;
  uint64_t events = 0;
  bool opened = false, expired = false;
  std::string bad; // why the stream was given up
  const auto on_open = [&](long /*status*/) {
    opened = true;
    healthy();
  };
  const auto on_line = [&](std::string_view line) {
    if (stop.stop_requested()) return false;
    auto ev = json::parse(line, nullptr, false);
    const std::string type = ev.is_object() ? string_field(ev, "type") : std::string();
    if (type.empty() || !ev.contains("object") || !ev["object"].is_object()) {
      bad = "an undecodable watch event: " + std::string(line.substr(0, 200));
      return false;
    }
    json& obj = ev["object"];
    if (type == "ERROR") { // a Status; 410 when rv is older than the server's history
      const long code = obj.value("code", 0L);
      if (code == 410) {
        expired = true;
      } else {
        bad = "an ERROR watch event: " + describe_response(code, obj.dump());
      }
      return false;
    }
    if (type == "BOOKMARK") {
      set_rv(rv_of(obj));
      return true;
    }
    EventType t{};
    if (type == "ADDED") {
      t = EventType::Added;
    } else if (type == "MODIFIED") {
      t = EventType::Modified;
    } else if (type == "DELETED") {
      t = EventType::Deleted;
    } else {
      bad = "a watch event of unknown type " + type;
      return false;
    }
    ++events;
    std::string obj_rv = rv_of(obj);
    opts.event(t, std::move(obj));
    // After the consumer has it: a watch resumed from here never repeats or skips it.
    set_rv(std::move(obj_rv));
    return true;
  };
  const auto started = Clock::now();
  auto r = client.stream(q, on_line, stop, on_open);
  if (stop.stop_requested()) return {Step::Stop};
  if (expired) {
    log("resourceVersion " + from_rv + " is too old (410 Expired): listing again");
    return {Step::List};
  }
  if (!bad.empty()) return {Step::Watch, failed("watch: " + bad)};
  const bool lasted = events > 0 || Clock::now() - started >= kShortWatch;
  if (!r) {
    if (!opened) return {Step::Watch, failed("watch: " + r.error().to_string())};
    // A connection lost mid-stream: resume from the last resourceVersion seen; at once when
    // the watch had worked for a while (a server restart, a load balancer's idle timeout).
    return {Step::Watch, failed("watch dropped after " + std::to_string(events) + " events: " +
                                    r.error().message + "; resuming from resourceVersion " + rv,
                                -1, lasted)};
  }
  if (r->status == 200) return {Step::Watch, lasted ? ms(0) : backoff()}; // ended: resume
  if (r->status == 410) {
    log("resourceVersion " + from_rv + " is too old (HTTP 410): listing again");
    return {Step::List};
  }
  if (retry_same_step(r->status))
    return {Step::Watch, failed(failure("watch", *r), r->retry_after_s)};
  // Anything else (404: the resource is not served, for example): list again, as client-go.
  return {Step::List, failed(failure("watch", *r), r->retry_after_s)};
}

} // namespace corral::kube
