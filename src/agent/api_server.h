// The agent's gRPC API for the CLI (proto/api/corral.proto), on a unix socket of mode 0600.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "agent/agent.h"
#include "core/result.h"
#include "events/hub.h"

namespace corral::agent {

class Activity;

class ApiServer {
public:
  // `activity` (may be null: no system monitor) answers `corral profile`.
  static Result<std::unique_ptr<ApiServer>> make(const std::string& socket_path, Agent& agent,
                                                 events::EventHub& hub, int64_t started,
                                                 const Activity* activity);
  ~ApiServer();
  void shutdown();

private:
  class Service;
  ApiServer() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string socket_path_;
};

} // namespace corral::agent
