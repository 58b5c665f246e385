#include "feed/follower.h"

#include <thread>

#include "corral.grpc.pb.h"
#include "events/proto_convert.h"

namespace corral::feed {

std::map<std::string, uint64_t> Positions::snapshot() const {
  std::lock_guard lock(mu_);
  return newest_;
}

void Positions::seed(const std::map<std::string, uint64_t>& newest) {
  std::lock_guard lock(mu_);
  for (const auto& [node, seq] : newest) newest_.try_emplace(node, seq);
}

bool Positions::offer(events::Alert&& a, const std::function<bool(events::Alert&&)>& take) {
  std::lock_guard lock(mu_);
  uint64_t& had = newest_[a.host_name];
  if (a.seq <= had) return true;
  had = a.seq;
  return take(std::move(a));
}

void Follower::stop() {
  stopping_ = true;
  std::lock_guard lock(mu_);
  if (ctx_) ctx_->TryCancel();
}

Follower::End Follower::run(Positions& positions, const std::function<bool(events::Alert&&)>& take,
                            bool keep_trying, std::string* error) {
  auto creds = channel_credentials(o_.tls, o_.tls_flags);
  if (!creds) {
    *error = creds.error().to_string();
    return End::kRejected;
  }
  auto stub = api::Events::NewStub(grpc::CreateChannel(o_.target, *creds));
  bool ever = false, told = false;
  auto backoff = std::chrono::milliseconds(200);
  while (!stopping_) {
    grpc::ClientContext ctx;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      ctx_ = &ctx;
    }
    api::StreamRequest req;
    req.set_filter(o_.filter);
    for (const auto& [node, seq] : positions.snapshot()) (*req.mutable_after())[node] = seq;
    req.set_from_now(o_.from_now && !ever);
    auto reader = stub->Stream(&ctx, req);
    api::Sequenced s;
    bool more = true;
    while (more && reader->Read(&s)) {
      if (!connected_) {
        connected_ = true;
        backoff = std::chrono::milliseconds(200);
        if (told && o_.log) o_.log(o_.target + ": reading again");
        told = false;
      }
      ever = true;
      switch (s.kind_case()) {
      case api::Sequenced::kPosition:
        positions.seed({s.position().newest().begin(), s.position().newest().end()});
        break;
      case api::Sequenced::kMessage:
        if (o_.log) o_.log(o_.target + ": " + s.message().level() + " " + s.message().message());
        break;
      case api::Sequenced::kAlert:
      case api::Sequenced::kLog: {
        auto a = s.has_alert() ? events::from_proto(s.alert()) : events::from_proto(s.log());
        a.seq = s.seq();
        more = positions.offer(std::move(a), take);
        break;
      }
      default: break;
      }
    }
    if (!more) ctx.TryCancel(); // Finish() would wait for the server to end the stream
    const grpc::Status st = reader->Finish();
    {
      std::lock_guard lock(mu_);
      ctx_ = nullptr;
    }
    connected_ = false;
    if (!more || stopping_) break;
    if (!ever) {
      *error = o_.target + ": " + st.error_message();
      if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) return End::kUnimplemented;
      if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) return End::kRejected;
      if (!keep_trying) return End::kUnreachable;
    }
    if (!told && o_.log) {
      o_.log(o_.target + ": " + (st.ok() ? std::string("stream ended") : st.error_message()) +
             "; reconnecting");
      told = true;
    }
    const auto until = std::chrono::steady_clock::now() + backoff;
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backoff = std::min(backoff * 2, o_.max_backoff);
  }
  return End::kStopped;
}

} // namespace corral::feed
