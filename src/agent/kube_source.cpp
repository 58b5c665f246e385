#include "agent/kube_source.h"

#include <ctime>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/reflector.h"
#include "policy/parser.h"

namespace corral::agent {
namespace {

using nlohmann::json;

constexpr const char* kGroupVersion = "security.kubearmor.com/v1";

struct PolicyResource {
  policy::Kind kind;
  const char* plural;
};
constexpr PolicyResource kPolicyResources[] = {
    {policy::Kind::Policy, "kubearmorpolicies"},
    {policy::Kind::HostPolicy, "kubearmorhostpolicies"},
    {policy::Kind::ClusterPolicy, "kubearmorclusterpolicies"},
};

std::string str(const json& j, const char* a, const char* b = nullptr) {
  const json* p = &j;
  for (const char* k : {a, b}) {
    if (k == nullptr) break;
    if (!p->is_object() || !p->contains(k)) return "";
    p = &(*p)[k];
  }
  return p->is_string() ? p->get<std::string>() : "";
}

policy::Labels labels(const json& object, const char* field) {
  policy::Labels out;
  const auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return out;
  const auto l = m->find(field);
  if (l == m->end() || !l->is_object()) return out;
  for (const auto& [k, v] : l->items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

int64_t generation(const json& object) {
  const auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return 0;
  const auto g = m->find("generation");
  return g != m->end() && g->is_number_integer() ? g->get<int64_t>() : 0;
}

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Pod pod_of(const json& object) {
  Pod p;
  p.uid = str(object, "metadata", "uid");
  p.name = str(object, "metadata", "name");
  p.namespace_name = str(object, "metadata", "namespace");
  p.labels = labels(object, "labels");
  p.annotations = labels(object, "annotations");
  return p;
}

// The policy a custom resource holds, as `corral validate` reads it: only what the policy
// format defines is handed over (the server's metadata, status and managedFields are not
// the policy's).
policy::ParseResult parse_object(const json& object, policy::Kind kind) {
  json doc = {{"apiVersion", kGroupVersion},
              {"kind", std::string(to_string(kind))},
              {"metadata", {{"name", str(object, "metadata", "name")}}}};
  if (const auto ns = str(object, "metadata", "namespace"); !ns.empty())
    doc["metadata"]["namespace"] = ns;
  // The annotations the policy format reads (a per-policy dry run, a lock: docs/policy.md).
  const auto annotations = labels(object, "annotations");
  for (const char* key : {"kubearmor-policy", policy::kLockAnnotation}) {
    if (annotations.count(key) > 0) doc["metadata"]["annotations"][key] = annotations.at(key);
  }
  if (object.contains("spec")) doc["spec"] = object["spec"];
  const std::string where =
      std::string(to_string(kind)) + "/" +
      (kind == policy::Kind::Policy ? str(object, "metadata", "namespace") + "/" : std::string()) +
      str(object, "metadata", "name") + " (Kubernetes API)";
  return policy::parse_policies(doc.dump(2), where);
}

std::string key_of(const json& object, policy::Kind kind) {
  policy::Policy p;
  p.kind = kind;
  p.name = str(object, "metadata", "name");
  p.namespace_name = str(object, "metadata", "namespace");
  return p.key();
}

} // namespace

// Who changed an object last: the manager of its newest managedFields entry (kubectl,
// a controller, ...), "unknown" when the API server keeps none.
std::string KubeSource::manager_of(const json& object) {
  const auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return "unknown";
  const auto fields = md->find("managedFields");
  if (fields == md->end() || !fields->is_array()) return "unknown (no managedFields)";
  std::string best, best_time;
  for (const auto& f : *fields) {
    if (!f.is_object() || !f.contains("manager") || !f["manager"].is_string()) continue;
    const std::string time = f.contains("time") && f["time"].is_string() ? f["time"] : "";
    if (best.empty() || time >= best_time) {
      best = f["manager"].get<std::string>();
      if (f.contains("operation") && f["operation"].is_string())
        best += " (" + f["operation"].get<std::string>() + ")";
      best_time = time;
    }
  }
  return best.empty() ? "unknown (no managedFields)" : best;
}

std::string KubeSource::event_name(const std::string& uid, int64_t generation) {
  return "corral-policyinvalid-" + uid + "-" + std::to_string(generation);
}

namespace {
// Per node: each node's enforcers may cover different sections.
std::string not_enforced_event_name(const std::string& uid, int64_t generation,
                                    const std::string& node) {
  return "corral-notenforced-" + uid + "-" + std::to_string(generation) + "-" + node;
}
} // namespace

struct KubeSource::Impl {
  Agent& agent;
  Options options;
  std::unique_ptr<kube::Client> client;
  std::vector<std::unique_ptr<kube::Reflector>> reflectors;
  std::mutex mu;
  std::set<std::string> reported; // Event names made (or found made by another node)

  Impl(Agent& a, Options o) : agent(a), options(std::move(o)) {}

  void log(const std::string& m) const {
    if (options.log) options.log("kubernetes: " + m);
  }

  void report(const Agent::Outcome& o) const {
    for (const auto& l : o.lines) log(l);
    for (const auto& w : o.warnings) log("warning: " + w);
    for (const auto& f : o.failed) log("NOT in force on " + f);
  }

  // One Event per invalid generation in the whole cluster: every node's agent posts the same
  // name, the first wins, the others get AlreadyExists.
  void report_invalid(const json& object, policy::Kind kind, const std::string& diagnostics) {
    const int64_t gen = generation(object);
    post_event(object, kind, "PolicyInvalid", event_name(str(object, "metadata", "uid"), gen),
               "not applied, corral validate refuses it (generation " + std::to_string(gen) +
                   "):\n" + diagnostics);
  }

  void post_event(const json& object, policy::Kind kind, const std::string& reason,
                  const std::string& name, const std::string& message) {
    const std::string uid = str(object, "metadata", "uid");
    {
      std::lock_guard lock(mu);
      if (!reported.insert(name).second) return;
    }
    const std::string ns = kind == policy::Kind::Policy ? str(object, "metadata", "namespace")
                                                        : std::string("default");
    json involved = {{"apiVersion", kGroupVersion},
                     {"kind", std::string(to_string(kind))},
                     {"name", str(object, "metadata", "name")},
                     {"uid", uid},
                     {"resourceVersion", str(object, "metadata", "resourceVersion")}};
    if (kind == policy::Kind::Policy) involved["namespace"] = ns;
    const std::string now = rfc3339_now();
    json event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", name}, {"namespace", ns}}},
                  {"involvedObject", involved},
                  {"type", "Warning"},
                  {"reason", reason},
                  {"message", message},
                  {"source", {{"component", "corrald"}, {"host", options.node}}},
                  {"reportingComponent", "corrald"},
                  {"reportingInstance", options.node},
                  {"firstTimestamp", now},
                  {"lastTimestamp", now},
                  {"count", 1}};
    auto r = client->request("POST", "/api/v1/namespaces/" + ns + "/events", event.dump());
    if (r && (r->status == 201 || r->status == 200 || r->status == 409)) return;
    log("could not report Event " + name + ": " +
        (r ? "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200)
           : r.error().to_string()));
    std::lock_guard lock(mu); // tried again at the next event or relist of the object
    reported.erase(name);
  }

  // The policy an object holds, or null after reporting it invalid.
  policy::PolicyPtr valid_policy(const json& object, policy::Kind kind) {
    auto parsed = parse_object(object, kind);
    if (parsed.ok() && parsed.policies.size() == 1) {
      for (const auto& d : parsed.diagnostics) log("warning: " + d.to_string());
      return parsed.policies.front();
    }
    std::string lines;
    for (const auto& d : parsed.diagnostics) lines += d.to_string() + "\n";
    log(key_of(object, kind) + " generation " + std::to_string(generation(object)) +
        " is invalid, nothing of it is applied (a previous valid generation stays in force):\n" +
        lines);
    report_invalid(object, kind, lines);
    return nullptr;
  }

  static std::string source_of(const json& object) {
    return "kubernetes: manager " + manager_of(object) + ", resourceVersion " +
           str(object, "metadata", "resourceVersion") + " (uid " + str(object, "metadata", "uid") +
           ", generation " + std::to_string(generation(object)) + ")";
  }

  static std::string deleted_source(const json& object) {
    return "kubernetes: deleted through the API (last manager " + manager_of(object) +
           ", resourceVersion " + str(object, "metadata", "resourceVersion") + ")";
  }

  // Rules this node cannot enforce: reported once per generation, as an invalid one is.
  void report_not_enforced(const json& object, policy::Kind kind, const policy::Policy& p) {
    std::vector<std::string> lines;
    agent.coverage_warnings(p, lines);
    if (lines.empty()) return;
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    post_event(
        object, kind, "RulesNotEnforced",
        not_enforced_event_name(str(object, "metadata", "uid"), generation(object), options.node),
        "applied, but not every rule is enforced on node " + options.node + ":\n" + text);
  }

  // Rules a lock keeps from allowing (docs/policy.md "Locked policies"), on the policy that
  // brought them or the lock: once per generation and node.
  void report_locked(const json& object, policy::Kind kind, const policy::Policy& p,
                     const Agent::Outcome& o) {
    std::string text;
    const std::string self = std::string(to_string(kind)) + "/" + p.name;
    for (const auto& w : o.warnings) {
      if (!policy::lock_report_about(w, self, p.name).empty()) text += w + "\n";
    }
    if (text.empty()) return;
    post_event(object, kind, "RulesIgnoredByLock",
               "corral-lockignored-" + str(object, "metadata", "uid") + "-" +
                   std::to_string(generation(object)) + "-" + options.node,
               "applied, but on node " + options.node + " a lock ignores:\n" + text);
  }

  void policies_listed(policy::Kind kind, std::vector<json>&& items) {
    std::vector<policy::PolicyPtr> put;
    std::vector<const json*> objects; // of `put`, in its order
    std::map<std::string, std::string> sources;
    std::set<std::string> keep; // invalid now: their previous generation stays
    for (const auto& o : items) {
      if (auto p = valid_policy(o, kind)) {
        report_not_enforced(o, kind, *p);
        sources[p->key()] = source_of(o);
        put.push_back(std::move(p));
        objects.push_back(&o);
      } else {
        keep.insert(key_of(o, kind));
      }
    }
    const auto o = agent.sync_policies(put, sources, kind, keep);
    for (size_t i = 0; i < put.size() && !o.warnings.empty(); ++i)
      report_locked(*objects[i], kind, *put[i], o);
    report(o);
  }

  void policy_event(policy::Kind kind, kube::EventType type, json&& object) {
    if (type == kube::EventType::Deleted) {
      report(agent.remove_policy(key_of(object, kind), deleted_source(object)));
      return;
    }
    if (auto p = valid_policy(object, kind)) {
      report_not_enforced(object, kind, *p);
      const auto o = agent.sync_policies({p}, {{p->key(), source_of(object)}});
      report_locked(object, kind, *p, o);
      report(o);
    }
  }

  void start_reflector(const std::string& path, const std::string& field_selector,
                       std::function<void(std::vector<json>&&)> replace,
                       std::function<void(kube::EventType, json&&)> event) {
    kube::Reflector::Options o;
    o.path = path;
    o.field_selector = field_selector;
    o.replace = std::move(replace);
    o.event = std::move(event);
    o.log = [this](const std::string& m) { log(m); };
    o.max_backoff = options.max_backoff;
    auto r = kube::Reflector::start(*client, std::move(o));
    if (!r) {
      log("cannot watch " + path + ": " + r.error().to_string());
      return;
    }
    reflectors.push_back(std::move(*r));
  }
};

KubeSource::KubeSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KubeSource::~KubeSource() {
  stop();
}

Result<std::unique_ptr<KubeSource>> KubeSource::start(kube::Config config, Agent& agent,
                                                      Options options) {
  if (options.node.empty()) {
    return Error{"Kubernetes mode needs this node's name",
                 "--node-name, or NODE_NAME from the downward API (spec.nodeName)"};
  }
  auto impl = std::make_unique<Impl>(agent, std::move(options));
  auto client = kube::Client::make(std::move(config));
  if (!client) return client.error();
  impl->client = std::move(*client);
  Impl* s = impl.get();
  for (const auto& r : kPolicyResources) {
    const policy::Kind kind = r.kind;
    s->start_reflector(
        std::string("/apis/") + kGroupVersion + "/" + r.plural, "",
        [s, kind](std::vector<json>&& items) { s->policies_listed(kind, std::move(items)); },
        [s, kind](kube::EventType t, json&& o) { s->policy_event(kind, t, std::move(o)); });
  }
  s->start_reflector(
      "/api/v1/namespaces", "",
      [s](std::vector<json>&& items) {
        std::map<std::string, policy::Labels> all;
        std::map<std::string, std::string> sources;
        for (const auto& o : items) {
          all[str(o, "metadata", "name")] = labels(o, "annotations");
          sources[str(o, "metadata", "name")] = Impl::source_of(o);
        }
        s->report(s->agent.replace_namespaces(all, sources));
      },
      [s](kube::EventType t, json&& o) {
        const bool gone = t == kube::EventType::Deleted;
        s->report(s->agent.set_namespace(str(o, "metadata", "name"),
                                         gone ? policy::Labels{} : labels(o, "annotations"),
                                         gone ? Impl::deleted_source(o) : Impl::source_of(o)));
      });
  s->start_reflector(
      "/api/v1/pods", "spec.nodeName=" + s->options.node,
      [s](std::vector<json>&& items) {
        std::vector<Pod> pods;
        for (const auto& o : items) pods.push_back(pod_of(o));
        s->agent.replace_pods(pods);
      },
      [s](kube::EventType t, json&& o) {
        if (t == kube::EventType::Deleted)
          s->agent.remove_pod(str(o, "metadata", "uid"));
        else
          s->agent.put_pod(pod_of(o));
      });
  return std::unique_ptr<KubeSource>(new KubeSource(std::move(impl)));
}

void KubeSource::stop() {
  if (!impl_) return;
  for (auto& r : impl_->reflectors) r->stop();
  if (impl_->client) impl_->client->cancel();
}

KubernetesStatus KubeSource::status() const {
  KubernetesStatus s;
  const auto& c = impl_->client->config();
  s.server = c.server;
  s.config = c.source;
  s.node = impl_->options.node;
  bool all_synced = !impl_->reflectors.empty(), all_connected = all_synced;
  for (const auto& r : impl_->reflectors) {
    const auto st = r->status();
    all_synced = all_synced && st.synced;
    all_connected = all_connected && st.connected;
    s.last_sync = std::max(s.last_sync, st.last_sync_unix);
    s.watch_restarts += st.watch_restarts;
    s.relists += st.relists;
    if (s.error.empty()) s.error = st.last_error;
  }
  s.state = all_connected && all_synced ? "connected"
            : s.error.empty()           ? "connecting"
                                        : "unreachable";
  if (s.state == "connected") s.error.clear();
  return s;
}

} // namespace corral::agent
