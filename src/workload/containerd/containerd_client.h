// A thin client of containerd's gRPC API: the few calls the workload source needs, each
// scoped to a containerd namespace and cancellable from another thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "core/result.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "workload/containerd/containerd_mapping.h"

namespace corral::workload {

// The calls in flight, so that stop() can cancel them from another thread:
// grpc::ClientContext::TryCancel() is thread-safe and makes a blocked Read() return.
class CallRegistry {
public:
  // False once cancel_all() ran: the caller must not start its call.
  bool add(grpc::ClientContext* ctx);
  void remove(grpc::ClientContext* ctx);
  void cancel_all();

private:
  std::mutex mu_;
  bool cancelled_ = false;
  std::set<grpc::ClientContext*> calls_;
};

struct TaskInfo {
  std::string container_id;
  int pid = 0;
  bool alive = false; // CREATED, RUNNING, PAUSING or PAUSED: its processes exist
};

using Envelope = containerd::services::events::v1::Envelope;

class ContainerdClient {
public:
  // Never fails: gRPC connects lazily, so an absent containerd shows up as the first call's
  // UNAVAILABLE error.
  ContainerdClient(const std::string& socket, CallRegistry& calls);

  Result<std::vector<std::string>> list_namespaces();
  Result<std::vector<ContainerInfo>> list_containers(const std::string& ns);
  Result<std::vector<TaskInfo>> list_tasks(const std::string& ns);
  Result<ContainerInfo> get_container(const std::string& ns, const std::string& id);

  // containerd's event stream (all namespaces), restricted to the given filters, which
  // containerd ORs (e.g. `topic=="/tasks/exit"`).
  class EventStream {
  public:
    EventStream(std::unique_ptr<grpc::ClientContext> ctx, CallRegistry& calls);
    ~EventStream();
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;

    // Blocks for the next event; false when the stream ended (then call finish()).
    bool next(Envelope& out);
    // Why the stream ended.
    Error finish();

  private:
    friend class ContainerdClient;
    std::unique_ptr<grpc::ClientContext> ctx_;
    std::unique_ptr<grpc::ClientReader<Envelope>> reader_;
    CallRegistry& calls_;
    bool finished_ = false;
  };
  Result<std::unique_ptr<EventStream>> subscribe(const std::vector<std::string>& filters);

private:
  std::string socket_;
  CallRegistry& calls_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<containerd::services::namespaces::v1::Namespaces::Stub> namespaces_;
  std::unique_ptr<containerd::services::containers::v1::Containers::Stub> containers_;
  std::unique_ptr<containerd::services::tasks::v1::Tasks::Stub> tasks_;
  std::unique_ptr<containerd::services::events::v1::Events::Stub> events_;
};

} // namespace corral::workload
