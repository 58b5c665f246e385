// KubeArmor's event API on the network (issue 11): `feeder.LogService` exactly as
// KUBEARMOR-WIRE.md lists it (HealthCheck, WatchMessages, WatchAlerts, WatchLogs) and the
// standard grpc.health.v1.Health, so that KubeArmor's own clients (karmor logs, its relay,
// its OpenTelemetry adapter) read a Corral agent unchanged.
//
// Every stream reads the event hub's bounded rings at its own pace: publishing never waits
// for a reader, so a slow client never slows enforcement; what it falls behind by more than
// a ring holds is lost to it (not to the others).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/result.h"
#include "events/hub.h"

namespace corral::agent {

class FeederServer {
public:
  struct Options {
    std::string listen; // host:port, e.g. 0.0.0.0:32767
    std::string cluster_name, host_name;
    std::function<void(const std::string&)> log;
  };
  static Result<std::unique_ptr<FeederServer>> start(Options options, events::EventHub& hub);
  ~FeederServer();
  void shutdown();
  [[nodiscard]] int port() const { return port_; } // the port bound (listen port 0: chosen)

private:
  class Service;
  FeederServer() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

} // namespace corral::agent
