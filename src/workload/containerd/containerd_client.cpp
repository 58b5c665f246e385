#include "workload/containerd/containerd_client.h"

#include <utility>

namespace corral::workload {
namespace {

namespace ctrd = containerd::services;

// Unary calls are local and small; a containerd that does not answer in this time is hung,
// and the source's reconnect loop takes over.
constexpr auto kCallTimeout = std::chrono::seconds(5);
// A container's record carries its whole OCI spec (tens of KiB); leave room for big ones.
constexpr int kMaxMessageBytes = 64 << 20;

// containerd scopes every call except events.Subscribe to the namespace named by this
// gRPC metadata header (containerd's namespaces.GRPCHeader).
constexpr const char* kNamespaceHeader = "containerd-namespace";

std::shared_ptr<grpc::Channel> make_channel(const std::string& socket) {
  grpc::ChannelArguments args;
  // Each reconnect of the source makes a new channel; a local subchannel pool keeps gRPC
  // from handing it the old channel's subchannel, still waiting out gRPC's own backoff
  // (1 s growing to 120 s), so a restarted containerd is seen within our 100 ms-2 s backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  return grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
}

Error status_error(const std::string& what, const grpc::Status& s, const std::string& socket) {
  Error e{"containerd " + what + ": " + s.error_message() + " (gRPC code " +
              std::to_string(static_cast<int>(s.error_code())) + ")",
          {}};
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
    e.hint = "is containerd running and listening on " + socket + "?";
  return e;
}

// One unary call's context: namespaced, with a deadline, registered for cancellation.
class ScopedCall {
public:
  ScopedCall(CallRegistry& calls, const std::string& ns) : calls_(calls) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    if (!ns.empty()) ctx_.AddMetadata(kNamespaceHeader, ns);
    registered_ = calls_.add(&ctx_);
  }
  ~ScopedCall() {
    if (registered_) calls_.remove(&ctx_);
  }
  ScopedCall(const ScopedCall&) = delete;
  ScopedCall& operator=(const ScopedCall&) = delete;

  [[nodiscard]] bool cancelled() const { return !registered_; }
  grpc::ClientContext* ctx() { return &ctx_; }

private:
  CallRegistry& calls_;
  grpc::ClientContext ctx_;
  bool registered_ = false;
};

Error stopping_error() {
  return Error{"containerd source is stopping", {}};
}

ContainerInfo to_info(const ctrd::containers::v1::Container& c) {
  ContainerInfo info{c.id(), c.image(), {}};
  for (const auto& [k, v] : c.labels()) info.labels.emplace(k, v);
  return info;
}

bool alive(containerd::v1::types::Status s) {
  using containerd::v1::types::Status;
  return s == Status::CREATED || s == Status::RUNNING || s == Status::PAUSING ||
         s == Status::PAUSED;
}

} // namespace

bool CallRegistry::add(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  calls_.insert(ctx);
  return true;
}

void CallRegistry::remove(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  calls_.erase(ctx);
}

void CallRegistry::cancel_all() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  for (auto* ctx : calls_) ctx->TryCancel();
}

ContainerdClient::ContainerdClient(const std::string& socket, CallRegistry& calls)
    : socket_(socket), calls_(calls), channel_(make_channel(socket)),
      namespaces_(ctrd::namespaces::v1::Namespaces::NewStub(channel_)),
      containers_(ctrd::containers::v1::Containers::NewStub(channel_)),
      tasks_(ctrd::tasks::v1::Tasks::NewStub(channel_)),
      events_(ctrd::events::v1::Events::NewStub(channel_)) {}

Result<std::vector<std::string>> ContainerdClient::list_namespaces() {
  ScopedCall call(calls_, "");
  if (call.cancelled()) return stopping_error();
  ctrd::namespaces::v1::ListNamespacesRequest req;
  ctrd::namespaces::v1::ListNamespacesResponse resp;
  const auto s = namespaces_->List(call.ctx(), req, &resp);
  if (!s.ok()) return status_error("list namespaces", s, socket_);
  std::vector<std::string> out;
  for (const auto& n : resp.namespaces()) out.push_back(n.name());
  return out;
}

Result<std::vector<ContainerInfo>> ContainerdClient::list_containers(const std::string& ns) {
  ScopedCall call(calls_, ns);
  if (call.cancelled()) return stopping_error();
  // ListStream, not List: List answers in one message, which a node with a few hundred
  // containers (each with its OCI spec) can push past gRPC's message size limit.
  ctrd::containers::v1::ListContainersRequest req;
  auto reader = containers_->ListStream(call.ctx(), req);
  std::vector<ContainerInfo> out;
  ctrd::containers::v1::ListContainerMessage msg;
  while (reader->Read(&msg)) out.push_back(to_info(msg.container()));
  const auto s = reader->Finish();
  if (!s.ok()) return status_error("list containers in namespace " + ns, s, socket_);
  return out;
}

Result<std::vector<TaskInfo>> ContainerdClient::list_tasks(const std::string& ns) {
  ScopedCall call(calls_, ns);
  if (call.cancelled()) return stopping_error();
  ctrd::tasks::v1::ListTasksRequest req;
  ctrd::tasks::v1::ListTasksResponse resp;
  const auto s = tasks_->List(call.ctx(), req, &resp);
  if (!s.ok()) return status_error("list tasks in namespace " + ns, s, socket_);
  std::vector<TaskInfo> out;
  // A task's Process is its init process: id is the container id (containerd's
  // tasks service, processFromTask), pid its host pid.
  for (const auto& p : resp.tasks())
    out.push_back(TaskInfo{p.id(), static_cast<int>(p.pid()), alive(p.status())});
  return out;
}

Result<ContainerInfo> ContainerdClient::get_container(const std::string& ns,
                                                      const std::string& id) {
  ScopedCall call(calls_, ns);
  if (call.cancelled()) return stopping_error();
  ctrd::containers::v1::GetContainerRequest req;
  req.set_id(id);
  ctrd::containers::v1::GetContainerResponse resp;
  const auto s = containers_->Get(call.ctx(), req, &resp);
  if (!s.ok()) return status_error("get container " + ns + "/" + id, s, socket_);
  return to_info(resp.container());
}

Result<std::unique_ptr<ContainerdClient::EventStream>>
ContainerdClient::subscribe(const std::vector<std::string>& filters) {
  // No deadline: the stream lives as long as the connection; stop() cancels it.
  auto stream = std::make_unique<EventStream>(std::make_unique<grpc::ClientContext>(), calls_);
  if (!calls_.add(stream->ctx_.get())) return stopping_error();
  ctrd::events::v1::SubscribeRequest req;
  for (const auto& f : filters) req.add_filters(f);
  stream->reader_ = events_->Subscribe(stream->ctx_.get(), req);
  return stream;
}

ContainerdClient::EventStream::EventStream(std::unique_ptr<grpc::ClientContext> ctx,
                                           CallRegistry& calls)
    : ctx_(std::move(ctx)), calls_(calls) {}

ContainerdClient::EventStream::~EventStream() {
  if (reader_ && !finished_) {
    // gRPC requires Finish() on a started call; cancel first so it does not wait for the
    // server to end the stream.
    ctx_->TryCancel();
    Envelope ignored;
    while (reader_->Read(&ignored)) {
    }
    (void)reader_->Finish();
  }
  calls_.remove(ctx_.get());
}

bool ContainerdClient::EventStream::next(Envelope& out) {
  return reader_->Read(&out);
}

Error ContainerdClient::EventStream::finish() {
  finished_ = true;
  const auto s = reader_->Finish();
  if (s.error_code() == grpc::StatusCode::CANCELLED) return Error{"event stream cancelled", {}};
  return Error{"containerd event stream ended: " + s.error_message() + " (gRPC code " +
                   std::to_string(static_cast<int>(s.error_code())) + ")",
               {}};
}

} // namespace corral::workload
