#include "workload/containerd/containerd_source.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "github.com/containerd/containerd/api/events/container.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "workload/containerd/containerd_client.h"
#include "workload/proc_identity.h"

namespace corral::workload {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{2000};
// While containerd stays unreachable, repeat the failure in the log at most this often.
constexpr auto kOutageLogEvery = std::chrono::seconds(30);

// The topics of containerd's runtime events (containerd runtime/events.go). /tasks/create
// comes from the shim once `runc create` has set up the container and before its init
// process runs the user's program (that waits for /tasks/start).
constexpr std::string_view kTaskCreate = "/tasks/create";
constexpr std::string_view kTaskStart = "/tasks/start";
constexpr std::string_view kTaskExit = "/tasks/exit";
constexpr std::string_view kTaskDelete = "/tasks/delete";
constexpr std::string_view kContainerDelete = "/containers/delete";

std::vector<std::string> event_filters() {
  std::vector<std::string> out;
  for (auto topic : {kTaskCreate, kTaskStart, kTaskExit, kTaskDelete, kContainerDelete})
    out.push_back("topic==\"" + std::string(topic) + "\"");
  return out;
}

} // namespace

struct ContainerdSource::Impl {
  Options opts;
  CallRegistry calls;
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false; // guarded by mu
  std::thread thread;
  // What was last reported, by container id. Only the source's thread touches it.
  std::map<std::string, Workload> known;

  void run();
  Error session(bool& synced);
  Result<void> resync(ContainerdClient& client);
  Result<std::map<std::string, Workload>> list_running(ContainerdClient& client);
  void handle(ContainerdClient& client, const Envelope& e);
  void task_started(ContainerdClient& client, const std::string& ns, const std::string& id, int pid,
                    bool created = false);
  void forget(const std::string& ns, const std::string& id);
  void report(const Workload& w);

  bool is_stopping() {
    std::lock_guard lock(mu);
    return stopping;
  }
  // Sleeps for d unless stop() comes first; false when stopping.
  bool sleep_for(milliseconds d) {
    std::unique_lock lock(mu);
    return !wake.wait_for(lock, d, [this] { return stopping; });
  }
  void log(const std::string& msg) {
    if (opts.log) opts.log("containerd source: " + msg);
  }
};

void ContainerdSource::Impl::run() {
  auto backoff = kMinBackoff;
  bool in_outage = false;
  auto last_logged = Clock::time_point{};
  while (!is_stopping()) {
    bool synced = false;
    const Error why = session(synced);
    if (is_stopping()) break;
    if (synced) {
      backoff = kMinBackoff;
      in_outage = false;
    }
    const auto now = Clock::now();
    if (!in_outage || now - last_logged >= kOutageLogEvery) {
      log(why.to_string() + "; reconnecting (backoff " + std::to_string(backoff.count()) +
          " ms, up to " + std::to_string(kMaxBackoff.count()) + " ms)");
      last_logged = now;
    }
    in_outage = true;
    if (!sleep_for(backoff)) break;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

// One connection: subscribe, list what runs, then follow the events until the stream breaks.
// Subscribing before listing means nothing that changes during the listing is missed; an
// event about something the listing already saw is harmless (reports are idempotent).
// containerd does not acknowledge a subscription (it sends no header before the first
// event), so "before" rests on the Subscribe call reaching containerd ahead of the List
// calls sent after it on the same connection.
Error ContainerdSource::Impl::session(bool& synced) {
  ContainerdClient client(opts.socket, calls);
  auto stream = client.subscribe(event_filters());
  if (!stream) return stream.error();
  if (auto r = resync(client); !r) return r.error();
  synced = true;
  if (opts.synced) opts.synced();
  Envelope e;
  while ((*stream)->next(e)) handle(client, e);
  return (*stream)->finish();
}

Result<std::map<std::string, Workload>>
ContainerdSource::Impl::list_running(ContainerdClient& client) {
  auto namespaces = client.list_namespaces();
  if (!namespaces) return namespaces.error();
  std::map<std::string, Workload> running;
  for (const auto& ns : *namespaces) {
    auto tasks = client.list_tasks(ns);
    if (!tasks) return tasks.error();
    if (std::none_of(tasks->begin(), tasks->end(), [](const TaskInfo& t) { return t.alive; }))
      continue;
    auto containers = client.list_containers(ns);
    if (!containers) return containers.error();
    std::map<std::string_view, const ContainerInfo*> by_id;
    for (const auto& c : *containers) by_id.emplace(c.id, &c);
    for (const auto& t : *tasks) {
      const auto c = by_id.find(t.container_id);
      if (!t.alive || c == by_id.end()) continue; // deleted between the two lists
      Workload w = to_workload(ns, *c->second, t.pid);
      if (auto r = fill_process_identity(w); !r) log("workload " + w.id + ": " + r.error().message);
      // Container ids are unique per containerd namespace only; the first one wins.
      if (!running.emplace(w.id, std::move(w)).second)
        log("container id " + t.container_id + " runs in several namespaces; reporting one");
    }
  }
  return running;
}

Result<void> ContainerdSource::Impl::resync(ContainerdClient& client) {
  auto running = list_running(client);
  if (!running) return running.error();
  size_t added = 0, changed = 0, gone = 0;
  for (const auto& [id, w] : known) {
    if (running->count(id)) continue;
    opts.remove(id);
    ++gone;
  }
  for (const auto& [id, w] : *running) {
    const auto it = known.find(id);
    if (it != known.end() && same_workload(it->second, w)) continue;
    ++(it == known.end() ? added : changed);
    opts.upsert(w);
  }
  known = std::move(*running);
  log("synced with " + opts.socket + ": " + std::to_string(known.size()) + " running workloads (" +
      std::to_string(added) + " new, " + std::to_string(changed) + " changed, " +
      std::to_string(gone) + " gone)");
  return {};
}

void ContainerdSource::Impl::handle(ContainerdClient& client, const Envelope& e) {
  const std::string& topic = e.topic();
  const std::string& ns = e.namespace_();
  // Payloads are decoded by topic: containerd's Any type URLs ("containerd.events.TaskExit")
  // lack the "/" that protobuf's Any::UnpackTo() expects.
  const std::string& payload = e.event().value();
  bool ok = true;
  if (topic == kTaskCreate) {
    containerd::events::TaskCreate ev;
    if ((ok = ev.ParseFromString(payload)))
      task_started(client, ns, ev.container_id(), static_cast<int>(ev.pid()), true);
  } else if (topic == kTaskStart) {
    containerd::events::TaskStart ev;
    if ((ok = ev.ParseFromString(payload)))
      task_started(client, ns, ev.container_id(), static_cast<int>(ev.pid()));
  } else if (topic == kTaskExit) {
    containerd::events::TaskExit ev;
    // Only the init process's exit ends the workload; its process id is the container id.
    if ((ok = ev.ParseFromString(payload)) && ev.id() == ev.container_id())
      forget(ns, ev.container_id());
  } else if (topic == kTaskDelete) {
    containerd::events::TaskDelete ev;
    if ((ok = ev.ParseFromString(payload)) && (ev.id().empty() || ev.id() == ev.container_id()))
      forget(ns, ev.container_id());
  } else if (topic == kContainerDelete) {
    containerd::events::ContainerDelete ev;
    if ((ok = ev.ParseFromString(payload))) forget(ns, ev.id());
  }
  if (!ok) log("cannot decode the " + topic + " event in namespace " + ns);
}

void ContainerdSource::Impl::task_started(ContainerdClient& client, const std::string& ns,
                                          const std::string& id, int pid, bool created) {
  // /tasks/start repeats what /tasks/create reported; skip the round trip.
  const auto it = known.find(id);
  if (it != known.end() && it->second.runtime_namespace == ns && it->second.init_pid == pid) return;
  auto info = client.get_container(ns, id);
  if (!info) {
    log("task " + ns + "/" + id + " started but its container is unknown: " + info.error().message);
    return;
  }
  Workload w = to_workload(ns, *info, pid);
  w.fresh = created;
  if (auto r = fill_process_identity(w); !r) log("workload " + id + ": " + r.error().message);
  report(w);
}

void ContainerdSource::Impl::report(const Workload& w) {
  known[w.id] = w;
  opts.upsert(w);
}

void ContainerdSource::Impl::forget(const std::string& ns, const std::string& id) {
  const auto it = known.find(id);
  if (it == known.end() || it->second.runtime_namespace != ns) return;
  known.erase(it);
  opts.remove(id);
}

Result<std::unique_ptr<ContainerdSource>> ContainerdSource::make(Options options) {
  if (options.socket.empty())
    return Error{"containerd source: empty socket path",
                 "pass the path of containerd's gRPC socket, e.g. /run/containerd/containerd.sock"};
  if (!options.upsert || !options.remove)
    return Error{"containerd source: the upsert and remove callbacks are required", {}};
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(options);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<ContainerdSource>(new ContainerdSource(std::move(impl)));
}

ContainerdSource::ContainerdSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ContainerdSource::~ContainerdSource() {
  stop();
}

void ContainerdSource::stop() {
  if (!impl_->thread.joinable()) return;
  if (impl_->thread.get_id() == std::this_thread::get_id())
    throw std::logic_error("ContainerdSource::stop() called from one of its callbacks");
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->calls.cancel_all();
  impl_->thread.join();
}

} // namespace corral::workload
