#include "agent/feeder.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <grpcpp/health_check_service_interface.h>

#include "events/format.h"
#include "events/proto_convert.h"
#include "kubearmor.grpc.pb.h"

namespace corral::agent {
namespace {

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

class FeederServer::Service final : public feeder::LogService::Service {
public:
  Service(Options options, events::EventHub& hub) : options_(std::move(options)), hub_(hub) {}
  std::atomic<bool> stopping{false};

  grpc::Status HealthCheck(grpc::ServerContext*, const feeder::NonceMessage* req,
                           feeder::ReplyMessage* reply) override {
    reply->set_retval(req->nonce());
    return grpc::Status::OK;
  }

  // Agent status messages: one saying who answers, then nothing until the client leaves.
  grpc::Status WatchMessages(grpc::ServerContext* ctx, const feeder::RequestMessage*,
                             grpc::ServerWriter<feeder::Message>* writer) override {
    feeder::Message m;
    const int64_t us = now_micros();
    m.set_timestamp(us / 1000000);
    m.set_updatedtime(events::rfc3339_micros(us));
    m.set_clustername(options_.cluster_name);
    m.set_hostname(options_.host_name);
    m.set_type("Message");
    m.set_level("INFO");
    m.set_message("corrald on " + options_.host_name + " serves feeder.LogService");
    if (!writer->Write(m)) return grpc::Status::OK;
    while (!ctx->IsCancelled() && !stopping)
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    return grpc::Status::OK;
  }

  grpc::Status WatchAlerts(grpc::ServerContext* ctx, const feeder::RequestMessage* req,
                           grpc::ServerWriter<feeder::Alert>* writer) override {
    if (req->filter() != "all" && req->filter() != "policy" && !req->filter().empty())
      return bad_filter(req->filter(), "all or policy");
    return stream(ctx, "policy", [writer](const events::Alert& a) {
      return writer->Write(events::to_proto_alert(a));
    });
  }

  grpc::Status WatchLogs(grpc::ServerContext* ctx, const feeder::RequestMessage* req,
                         grpc::ServerWriter<feeder::Log>* writer) override {
    if (req->filter() != "all" && req->filter() != "system" && !req->filter().empty())
      return bad_filter(req->filter(), "all or system");
    return stream(ctx, "system", [writer](const events::Alert& a) {
      return writer->Write(events::to_proto_log(a));
    });
  }

private:
  static grpc::Status bad_filter(const std::string& filter, const char* valid) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "unknown filter \"" + filter + "\" (valid: " + std::string(valid) + ")");
  }

  // The events published from now on, of the alerts' or the logs' ring, until the client
  // leaves or the agent stops. The hub's rings are the bounded queue: this loop only reads.
  template <class Write>
  grpc::Status stream(grpc::ServerContext* ctx, const char* rings, Write write) {
    events::Filter f;
    f.log_filter = rings;
    uint64_t last = hub_.total();
    while (true) {
      while (!hub_.wait(last, std::chrono::milliseconds(250))) {
        if (ctx->IsCancelled() || stopping) return grpc::Status::OK;
      }
      for (const auto& a : hub_.since(last, f, &last)) {
        if (!write(a)) return grpc::Status::OK;
      }
    }
  }

  Options options_;
  events::EventHub& hub_;
};

Result<std::unique_ptr<FeederServer>> FeederServer::start(Options options, events::EventHub& hub) {
  std::unique_ptr<FeederServer> s(new FeederServer());
  const std::string listen = options.listen;
  s->service_ = std::make_unique<Service>(std::move(options), hub);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  b.AddListeningPort(listen, grpc::InsecureServerCredentials(), &s->port_);
  b.RegisterService(s->service_.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return Error{"--grpc-listen " + listen + ": cannot listen there",
                 "HOST:PORT that is free on this node, e.g. 0.0.0.0:32767 (KubeArmor's port)", 0};
  }
  return s;
}

void FeederServer::shutdown() {
  if (!server_) return;
  service_->stopping = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_.reset();
}

FeederServer::~FeederServer() {
  shutdown();
}

} // namespace corral::agent
