// Events on the network (issue 11), served from an event hub: KubeArmor's `feeder.LogService`
// exactly as KUBEARMOR-WIRE.md lists it (HealthCheck, WatchMessages, WatchAlerts, WatchLogs),
// the standard grpc.health.v1.Health, and corral.api.Events (the same events with their
// node's sequence numbers, to resume without loss or duplicates). corrald serves its own
// hub; corral-relay serves the hub it merges its agents' streams into.
//
// Every stream reads the hub's bounded rings at its own pace with a cursor of its own: that
// is each client's bounded queue. Publishing never waits for a reader, so a slow client never
// slows enforcement; what it falls behind by more than a ring holds is lost to it alone,
// counted, and reported to it as a Message (on corral.api.Events inline; on LogService to the
// WatchMessages stream of the same connection) and in the server's log.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/result.h"
#include "events/hub.h"
#include "feed/tls.h"

namespace corral::feed {

class Server {
public:
  struct Options {
    std::string listen;                 // host:port, e.g. 0.0.0.0:32767
    std::string flag = "--grpc-listen"; // named in errors
    std::string cluster_name, host_name;
    TlsFiles tls; // cert+key: TLS; ca too: clients must present a certificate it signed
    std::function<void(const std::string&)> log;
  };
  static Result<std::unique_ptr<Server>> start(Options options, events::EventHub& hub);
  ~Server();
  void shutdown();
  [[nodiscard]] int port() const { return port_; } // the port bound (listen port 0: chosen)

private:
  class Feeder;
  class Events;
  struct Shared;
  Server() = default;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Feeder> feeder_;
  std::unique_ptr<Events> events_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

} // namespace corral::feed
