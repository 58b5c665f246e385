#include "feed/server.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <grpcpp/health_check_service_interface.h>

#include "corral.grpc.pb.h"
#include "events/format.h"
#include "events/proto_convert.h"
#include "kubearmor.grpc.pb.h"

namespace corral::feed {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(250); // how soon a gone client is noticed

grpc::Status bad_filter(const std::string& filter, const char* valid) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "unknown filter \"" + filter + "\" (valid: " + std::string(valid) + ")");
}

} // namespace

// What the services share: the hub, who answers, and the events each connection missed.
struct Server::Shared {
  Shared(Options o, events::EventHub& h) : options(std::move(o)), hub(h) {}
  Options options;
  events::EventHub& hub;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::map<std::string, uint64_t> missed; // peer (a connection) -> events it missed

  feeder::Message message(const std::string& level, const std::string& text) const {
    feeder::Message m;
    const int64_t us = events::now_micros();
    m.set_timestamp(us / 1000000);
    m.set_updatedtime(events::rfc3339_micros(us));
    m.set_clustername(options.cluster_name);
    m.set_hostname(options.host_name);
    m.set_type("Message");
    m.set_level(level);
    m.set_message(text);
    return m;
  }

  // Counts what a reader lost; the text reported for it.
  std::string lost(const std::string& peer, uint64_t n) {
    uint64_t total;
    {
      std::lock_guard lock(mu);
      total = missed[peer] += n;
    }
    const std::string text = std::to_string(n) + " events dropped for " + peer + " (" +
                             std::to_string(total) +
                             " in all): it reads slower than events come, by more than the "
                             "server buffers";
    if (options.log) options.log(text);
    return text;
  }

  // Waits for events after `c`; false when the client left or the server stops.
  bool wait(grpc::ServerContext* ctx, const events::EventHub::Cursor& c) const {
    while (!hub.wait(c.seq, kPoll)) {
      if (ctx->IsCancelled() || stopping) return false;
    }
    return true;
  }
};

class Server::Feeder final : public feeder::LogService::Service {
public:
  explicit Feeder(Shared& s) : s_(s) {}

  grpc::Status HealthCheck(grpc::ServerContext*, const feeder::NonceMessage* req,
                           feeder::ReplyMessage* reply) override {
    reply->set_retval(req->nonce());
    return grpc::Status::OK;
  }

  // Status messages: one saying who answers, then the events this connection's streams
  // dropped, until the client leaves.
  grpc::Status WatchMessages(grpc::ServerContext* ctx, const feeder::RequestMessage*,
                             grpc::ServerWriter<feeder::Message>* writer) override {
    if (!writer->Write(s_.message("INFO", s_.options.host_name + " serves feeder.LogService")))
      return grpc::Status::OK;
    uint64_t told = missed(ctx->peer());
    while (!ctx->IsCancelled() && !s_.stopping) {
      std::this_thread::sleep_for(kPoll);
      const uint64_t now = missed(ctx->peer());
      if (now == told) continue;
      const std::string text = std::to_string(now - told) + " events dropped for this client (" +
                               std::to_string(now) + " in all): it reads slower than events come";
      if (!writer->Write(s_.message("WARN", text))) break;
      told = now;
    }
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
  uint64_t missed(const std::string& peer) {
    std::lock_guard lock(s_.mu);
    const auto it = s_.missed.find(peer);
    return it == s_.missed.end() ? 0 : it->second;
  }

  // The events published from now on, of the alerts' or the logs' ring.
  template <class Write>
  grpc::Status stream(grpc::ServerContext* ctx, const char* rings, Write write) {
    events::Filter f;
    f.log_filter = rings;
    auto c = s_.hub.end();
    while (s_.wait(ctx, c)) {
      uint64_t lost = 0;
      for (const auto& a : s_.hub.read(&c, f, &lost)) {
        if (!write(a)) return grpc::Status::OK;
      }
      if (lost > 0) s_.lost(ctx->peer(), lost);
    }
    return grpc::Status::OK;
  }

  Shared& s_;
};

class Server::Events final : public api::Events::Service {
public:
  explicit Events(Shared& s) : s_(s) {}

  grpc::Status Stream(grpc::ServerContext* ctx, const api::StreamRequest* req,
                      grpc::ServerWriter<api::Sequenced>* writer) override {
    events::Filter f;
    f.log_filter = req->filter().empty() ? "all" : req->filter();
    if (f.log_filter != "all" && f.log_filter != "policy" && f.log_filter != "system")
      return bad_filter(req->filter(), "policy, system or all");
    std::map<std::string, uint64_t> after(req->after().begin(), req->after().end());
    auto c = s_.hub.first();
    uint64_t lost = 0;
    auto backlog = s_.hub.read(&c, f, &lost);
    if (req->from_now()) {
      // "Now" per node is its newest event here: the reader resumes from it next time.
      api::Sequenced pos;
      auto& newest = *pos.mutable_position()->mutable_newest();
      for (const auto& a : backlog) newest[a.host_name] = std::max(newest[a.host_name], a.seq);
      for (const auto& [node, seq] : newest) after.try_emplace(node, seq);
      if (!writer->Write(pos)) return grpc::Status::OK;
    }
    while (true) {
      for (const auto& a : backlog) {
        // Not twice: a relay may receive what this reader already had (after either restarts).
        uint64_t& had = after[a.host_name];
        if (a.seq <= had) continue;
        had = a.seq;
        api::Sequenced out;
        if (a.is_alert()) {
          *out.mutable_alert() = events::to_proto_alert(a);
        } else {
          *out.mutable_log() = events::to_proto_log(a);
        }
        out.set_seq(a.seq);
        if (!writer->Write(out)) return grpc::Status::OK;
      }
      if (lost > 0) {
        api::Sequenced m;
        *m.mutable_message() = s_.message("WARN", s_.lost(ctx->peer(), lost));
        if (!writer->Write(m)) return grpc::Status::OK;
      }
      if (!s_.wait(ctx, c)) return grpc::Status::OK;
      backlog = s_.hub.read(&c, f, &lost);
    }
  }

private:
  Shared& s_;
};

Result<std::unique_ptr<Server>> Server::start(Options options, events::EventHub& hub) {
  auto creds = server_credentials(options.tls,
                                  options.flag.substr(0, options.flag.find("-listen")) + "-tls");
  if (!creds) return creds.error();
  std::unique_ptr<Server> s(new Server());
  const std::string listen = options.listen, flag = options.flag;
  s->shared_ = std::make_shared<Shared>(std::move(options), hub);
  s->feeder_ = std::make_unique<Feeder>(*s->shared_);
  s->events_ = std::make_unique<Events>(*s->shared_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  b.AddListeningPort(listen, *creds, &s->port_);
  b.RegisterService(s->feeder_.get());
  b.RegisterService(s->events_.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return Error{flag + " " + listen + ": cannot listen there",
                 "HOST:PORT that is free on this node, e.g. 0.0.0.0:32767 (KubeArmor's port)", 0};
  }
  return s;
}

void Server::shutdown() {
  if (!server_) return;
  shared_->stopping = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_.reset();
}

Server::~Server() {
  shutdown();
}

} // namespace corral::feed
