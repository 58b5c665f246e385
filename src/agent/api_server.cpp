#include "agent/api_server.h"

#include <algorithm>
#include <filesystem>

#include <sys/stat.h>
#include <unistd.h>

#include "agent/activity.h"
#include "agent/kernel_limits.h"
#include "core/memory.h"
#include "core/version.h"
#include "corral.grpc.pb.h"
#include "events/proto_convert.h"
#include "policy/selector.h"

namespace corral::agent {
namespace {

grpc::Status to_status(const Error& e) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.message, e.hint);
}

std::vector<std::pair<std::string, std::string>>
files_of(const google::protobuf::RepeatedPtrField<api::PolicyFile>& files) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : files) out.emplace_back(f.name(), f.text());
  return out;
}

void fill(const Agent::Outcome& o, google::protobuf::RepeatedPtrField<std::string>* lines,
          google::protobuf::RepeatedPtrField<std::string>* warnings) {
  for (const auto& l : o.lines) *lines->Add() = l;
  for (const auto& w : o.warnings) *warnings->Add() = w;
}

// In Kubernetes mode the API server is the one source of policies and annotations.
grpc::Status refuse_in_kubernetes(const std::string& what, const std::string& kubectl) {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "this agent takes its policies and namespace annotations from the "
                      "Kubernetes API (corrald --kubernetes); " +
                          what + " here would be undone by the API, so nothing was changed",
                      "use kubectl: " + kubectl);
}

// A change's source as the CLI tells it ("uid 0 (corral apply)"); only root reaches the
// socket (0600), so that is what an empty one from an older CLI means too.
std::string who(const std::string& told, const char* command) {
  return "local " + (told.empty() ? std::string("uid 0 (corral ") + command + ")" : told);
}

} // namespace

class ApiServer::Service final : public api::Agent::Service {
public:
  Service(Agent& agent, events::EventHub& hub, int64_t started, const Activity* activity)
      : agent_(agent), hub_(hub), started_(started), activity_(activity) {}
  std::atomic<bool> stopping{false};

  grpc::Status Apply(grpc::ServerContext*, const api::ApplyRequest* req,
                     api::ApplyReply* reply) override {
    if (agent_.kubernetes()) return refuse_in_kubernetes("an apply", "kubectl apply -f FILE");
    auto r = agent_.apply(files_of(req->files()), who(req->who(), "apply"));
    release_free_memory(); // what parsing used, and the RuleSets replaced
    if (!r) return to_status(r.error());
    fill(*r, reply->mutable_configured(), reply->mutable_warnings());
    for (const auto& f : r->failed) *reply->add_failed() = f;
    return grpc::Status::OK;
  }

  grpc::Status Delete(grpc::ServerContext*, const api::DeleteRequest* req,
                      api::DeleteReply* reply) override {
    if (agent_.kubernetes()) {
      return refuse_in_kubernetes("a delete",
                                  "kubectl delete -f FILE (or kubectl delete ksp NAME -n NS)");
    }
    std::vector<std::string> keys;
    if (req->files_size() > 0) {
      auto k = agent_.keys_of(files_of(req->files()));
      if (!k) return to_status(k.error());
      keys = *k;
    } else {
      policy::Policy p;
      p.name = req->name();
      p.namespace_name = req->namespace_();
      const std::string kind = to_lower(req->kind());
      if (kind == "kubearmorclusterpolicy" || kind == "ksp-cluster" || kind == "csp") {
        p.kind = policy::Kind::ClusterPolicy;
      } else if (kind == "kubearmorhostpolicy" || kind == "hsp") {
        p.kind = policy::Kind::HostPolicy;
      } else if (kind != "kubearmorpolicy" && kind != "ksp") {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown kind " + req->kind(),
                            "KubeArmorPolicy (ksp), KubeArmorClusterPolicy (csp) or "
                            "KubeArmorHostPolicy (hsp)");
      }
      if (p.kind != policy::Kind::Policy) p.namespace_name.clear();
      keys.push_back(p.key());
    }
    auto r = agent_.remove(keys, who(req->who(), "delete"));
    release_free_memory(); // the deleted policies and the RuleSets compiled from them
    if (!r) return grpc::Status(grpc::StatusCode::NOT_FOUND, r.error().message, r.error().hint);
    for (const auto& l : r->lines) *reply->add_deleted() = l;
    for (const auto& f : r->failed) *reply->add_failed() = f;
    return grpc::Status::OK;
  }

  grpc::Status ListPolicies(grpc::ServerContext*, const api::ListRequest* req,
                            api::PolicyList* reply) override {
    for (const auto& v : agent_.policies(req->namespace_())) {
      auto* p = reply->add_policies();
      p->set_kind(std::string(to_string(v.policy->kind)));
      p->set_namespace_(v.policy->namespace_name);
      p->set_name(v.policy->name);
      p->set_rules(static_cast<int32_t>(v.policy->rules.size()));
      for (const auto& w : v.workloads) *p->add_workloads() = w;
      p->set_applied(v.applied);
      p->set_source(v.source);
      p->set_text(v.policy->source);
      p->set_dry_run(v.policy->dry_run);
      p->set_locked(v.policy->locked);
    }
    return grpc::Status::OK;
  }

  grpc::Status ListWorkloads(grpc::ServerContext*, const api::ListRequest* req,
                             api::WorkloadList* reply) override {
    for (const auto& v : agent_.workloads(req->namespace_()))
      fill_workload(v, reply->add_workloads());
    return grpc::Status::OK;
  }

  static void fill_workload(const WorkloadView& v, api::WorkloadInfo* w) {
    w->set_id(v.workload.id);
    w->set_name(v.workload.name);
    w->set_namespace_(v.workload.namespace_name);
    w->set_pod(v.workload.pod);
    w->mutable_labels()->insert(v.workload.labels.begin(), v.workload.labels.end());
    w->set_image(v.workload.image);
    w->set_pid(v.workload.init_pid);
    w->set_enforcer(v.enforcer);
    for (const auto& p : v.policies) *w->add_policies() = p;
    w->set_file_posture(std::string(to_string(v.settings.postures.file)));
    w->set_network_posture(std::string(to_string(v.settings.postures.network)));
    w->set_capabilities_posture(std::string(to_string(v.settings.postures.capabilities)));
    w->set_rules(static_cast<int32_t>(v.rules));
    w->set_runtime_namespace(v.workload.runtime_namespace);
    w->set_enforcement(v.enforcement);
    w->set_rules_fingerprint(v.fingerprint);
    for (const auto& sec : v.sections) *w->add_sections() = sec;
  }

  grpc::Status Profile(grpc::ServerContext*, const api::ProfileRequest* req,
                       api::ProfileReply* reply) override {
    reply->set_monitor(activity_ != nullptr);
    const auto add = [](const std::map<std::string, Seen>& items,
                        google::protobuf::RepeatedPtrField<api::SeenItem>* out) {
      for (const auto& [name, s] : items) {
        auto* i = out->Add();
        i->set_name(name);
        i->set_count(s.count);
        i->set_first(s.first);
        i->set_last(s.last);
        i->set_protocol(s.protocol);
        i->set_changed(s.changed);
      }
    };
    for (const auto& v : agent_.workloads(req->namespace_())) {
      const auto& w = v.workload;
      if (!req->pod().empty() && w.pod != req->pod()) continue;
      const auto& c = req->container();
      if (!c.empty() && w.name != c && !(c.size() >= 12 && w.id.starts_with(c))) continue;
      WorkloadActivity a;
      if (activity_ != nullptr) {
        if (auto got = activity_->activity(w.id, req->since())) a = std::move(*got);
      }
      if (req->running()) add_running(w, a);
      mark_changed(w, a);
      auto* p = reply->add_workloads();
      fill_workload(v, p->mutable_workload());
      add(a.processes, p->mutable_processes());
      add(a.files, p->mutable_files());
      add(a.network, p->mutable_network());
      p->set_visibility(visibility_text(agent_.visibility(w)));
      p->set_files_recorded(a.files_recorded);
      p->set_network_recorded(a.network_recorded);
      p->set_since(a.since);
      p->set_not_kept(a.not_kept);
      const auto ns = agent_.annotations(w.namespace_name);
      p->mutable_namespace_annotations()->insert(ns.begin(), ns.end());
    }
    return grpc::Status::OK;
  }

  grpc::Status Annotate(grpc::ServerContext*, const api::AnnotateRequest* req,
                        api::AnnotateReply* reply) override {
    if (agent_.kubernetes()) {
      return refuse_in_kubernetes(
          "an annotation", "kubectl annotate ns " +
                               (req->namespace_().empty() ? std::string("NS") : req->namespace_()) +
                               " KEY=VALUE --overwrite");
    }
    const policy::Labels set(req->set().begin(), req->set().end());
    const std::vector<std::string> remove(req->remove().begin(), req->remove().end());
    auto r = agent_.annotate(req->namespace_(), set, remove, req->overwrite(),
                             who(req->who(), "annotate"));
    if (!r) return to_status(r.error());
    const auto now = agent_.annotations(req->namespace_());
    reply->mutable_annotations()->insert(now.begin(), now.end());
    for (const auto& w : r->warnings) *reply->add_warnings() = w;
    for (const auto& f : r->failed) *reply->add_failed() = f;
    return grpc::Status::OK;
  }

  grpc::Status History(grpc::ServerContext*, const api::HistoryRequest* req,
                       api::HistoryReply* reply) override {
    auto entries = agent_.history(req->namespace_());
    if (!entries) return to_status(entries.error());
    for (const auto& e : *entries) {
      auto* h = reply->add_entries();
      h->set_seq(e.seq);
      h->set_time(e.time);
      h->set_source(e.source);
      h->set_action(e.action);
      h->set_object(e.object);
      h->set_digest(e.digest);
      h->set_severity(e.severity);
      h->set_summary(e.summary);
      h->set_hash(e.hash);
      h->set_prev(e.prev);
      h->set_file(e.file);
    }
    return grpc::Status::OK;
  }

  grpc::Status Verify(grpc::ServerContext*, const api::VerifyRequest* req,
                      api::VerifyReply* reply) override {
    if (req->accept()) {
      auto n = agent_.accept(who(req->who(), "verify --accept"));
      if (!n) return to_status(n.error());
      reply->set_accepted(*n);
    }
    const auto report = agent_.verify();
    reply->set_entries(report.entries);
    reply->set_files(report.files);
    for (const auto& p : report.problems) *reply->add_problems() = p;
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const api::StatusRequest*,
                      api::StatusReply* reply) override {
    const auto& c = agent_.config();
    reply->set_version(kVersion);
    reply->set_cluster_name(c.cluster_name);
    reply->set_host_name(c.host_name);
    reply->set_started(started_);
    reply->set_policies(static_cast<int32_t>(agent_.policies("").size()));
    const auto workloads = agent_.workloads("");
    reply->set_workloads(static_cast<int32_t>(workloads.size()));
    reply->set_not_enforced(static_cast<int32_t>(
        std::count_if(workloads.begin(), workloads.end(),
                      [](const WorkloadView& v) { return v.not_enforced(); })));
    reply->set_stale(static_cast<int32_t>(std::count_if(
        workloads.begin(), workloads.end(), [](const WorkloadView& v) { return v.stale(); })));
    reply->set_default_file_posture(std::string(to_string(c.default_postures.file)));
    reply->set_default_network_posture(std::string(to_string(c.default_postures.network)));
    reply->set_default_capabilities_posture(
        std::string(to_string(c.default_postures.capabilities)));
    if (const auto k = agent_.kubernetes_status()) {
      auto* ks = reply->mutable_kubernetes();
      ks->set_state(k->state);
      ks->set_server(k->server);
      ks->set_node(k->node);
      ks->set_config(k->config);
      ks->set_last_sync(k->last_sync);
      ks->set_watch_restarts(k->watch_restarts);
      ks->set_relists(k->relists);
      ks->set_pods(static_cast<int32_t>(agent_.pod_count()));
      ks->set_error(k->error);
    }
    reply->set_alerts(hub_.alerts());
    reply->set_alerts_dropped(hub_.evicted());
    reply->set_logs(hub_.logs());
    reply->set_logs_dropped(hub_.logs_evicted());
    if (const auto* e = agent_.enforcer()) {
      const auto n = e->counters();
      reply->set_enforcer(std::string(e->name()));
      reply->set_enforced(static_cast<int32_t>(enforced_workloads(n.enforced, workloads)));
      reply->set_events(n.events);
      reply->set_denied(n.denied);
      reply->set_errors_allowed(n.errors_allowed);
      reply->set_timeouts_allowed(n.timeouts_allowed);
      reply->set_timeouts_denied(n.timeouts_denied);
      auto& extra = *reply->mutable_counters();
      extra["cached_allows"] = std::to_string(n.cached);
      extra["interpreters_allowed"] = std::to_string(n.interpreters);
      extra["open_mode_unknown"] = std::to_string(n.write_unknown);
      extra["denied_undecidable"] = std::to_string(n.errors_denied);
      extra["left_pending_by_previous_agent"] = std::to_string(n.leftovers);
      const auto limits = read_kernel_limits();
      extra["fanotify_groups"] = std::to_string(n.groups) + " of max_user_groups " +
                                 std::to_string(limits.fanotify_groups);
      extra["fanotify_cache_marks"] = std::to_string(n.cache_marks) + " (max_user_marks " +
                                      std::to_string(limits.fanotify_marks) + ")";
      extra["contained_by_backstop"] = std::to_string(n.contained);
      for (const auto& [k, v] : n.extras) extra[k] = v;
      extra["open_files_limit"] = std::to_string(limits.open_files);
      extra["exec_backstop"] = !n.backstop                ? "off"
                               : n.backstop_reader_failed ? "on (its reports cannot be read)"
                                                          : "on";
      if (n.backstop) {
        extra["backstop_kills"] = std::to_string(n.backstop_kills);
        extra["backstop_audits"] = std::to_string(n.backstop_audits);
        extra["backstop_reports_dropped"] = std::to_string(n.backstop_dropped);
        extra["backstop_kill_failures"] = std::to_string(n.backstop_kill_failures);
      }
    } else {
      reply->set_enforcer("none");
    }
    std::map<std::string, std::string> extra;
    agent_.extra_status(extra);
    for (auto& [k, v] : extra) (*reply->mutable_counters())[k] = std::move(v);
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* ctx, const api::WatchRequest* req,
                     grpc::ServerWriter<api::Event>* writer) override {
    events::Filter f;
    f.log_filter = req->filter().empty() ? "policy" : req->filter();
    f.namespace_name = req->namespace_();
    f.pod = req->pod();
    f.container = req->container();
    f.operation = req->operation();
    f.resource = req->resource();
    f.source = req->source();
    uint64_t last = 0;
    std::vector<events::Alert> batch;
    if (req->only_new()) {
      last = hub_.total();
    } else {
      batch = hub_.newest(f, static_cast<size_t>(std::max(0, req->limit())), &last);
    }
    while (true) {
      for (const auto& a : batch) {
        api::Event ev;
        if (a.is_alert()) {
          *ev.mutable_alert() = events::to_proto_alert(a);
        } else {
          *ev.mutable_log() = events::to_proto_log(a);
        }
        if (!writer->Write(ev)) return grpc::Status::OK;
      }
      if (!req->follow()) return grpc::Status::OK;
      // Wake up regularly to notice a client that went away or an agent shutting down.
      while (!hub_.wait(last, std::chrono::milliseconds(250))) {
        if (ctx->IsCancelled() || stopping) return grpc::Status::OK;
      }
      batch = hub_.since(last, f, &last);
    }
  }

private:
  Agent& agent_;
  events::EventHub& hub_;
  int64_t started_;
  const Activity* activity_;
};

Result<std::unique_ptr<ApiServer>> ApiServer::make(const std::string& socket_path, Agent& agent,
                                                   events::EventHub& hub, int64_t started,
                                                   const Activity* activity) {
  std::unique_ptr<ApiServer> s(new ApiServer());
  s->socket_path_ = socket_path;
  const auto dir = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{"create " + dir.string() + ": " + ec.message(), "choose --api-socket"};
  ::unlink(socket_path.c_str()); // a stale socket from a killed agent
  s->service_ = std::make_unique<Service>(agent, hub, started, activity);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  b.RegisterService(s->service_.get());
  // Room for an apply of several large policies (the CLI refuses more, saying so); replies
  // have no limit on the server's side.
  b.SetMaxReceiveMessageSize(static_cast<int>(policy::kMaxApplyBytes) + (1 << 20));
  // The socket is created by BuildAndStart; a umask keeps it private from the first moment.
  const mode_t old = ::umask(0077);
  s->server_ = b.BuildAndStart();
  ::umask(old);
  if (!s->server_) {
    return Error{"cannot listen on unix:" + socket_path,
                 "is another corrald running? choose another --api-socket"};
  }
  ::chmod(socket_path.c_str(), 0600);
  return s;
}

void ApiServer::shutdown() {
  if (!server_) return;
  service_->stopping = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_.reset();
  ::unlink(socket_path_.c_str());
}

ApiServer::~ApiServer() {
  shutdown();
}

} // namespace corral::agent
