// corral contain WORKLOAD — the seed's whole procedure as one safe command: discover what
// the workload needs, apply that allow-list in dry run ("Audit (Block)": nothing is denied
// yet), show what would have been denied during an observe window, then block when
// confirmed. Running processes are never killed and nothing restarts.
//
// Every step is one atomic change at the agent, and the states between them are safe: the
// policy in dry run denies nothing; the namespace's file posture is set to block only with
// the policy in place. What contain changed is written into the policy itself (annotations
// corral.io/contained-*), so `--undo` restores exactly what was there before — also after
// the CLI or the agent was interrupted.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/discovery.h"
#include "events/proto_convert.h"
#include "kube/client.h"
#include "kube/config.h"
#include "policy/model.h"

namespace corral::cli {
namespace {

constexpr const char* kWorkloadKey = "corral.io/contained-workload";
constexpr const char* kIdKey = "corral.io/contained-id";
constexpr const char* kPodKey = "corral.io/contained-pod";             // "" outside Kubernetes
constexpr const char* kPostureKey = "corral.io/previous-file-posture"; // "-": absent
constexpr const char* kPosture = "kubearmor-file-posture";

struct Options {
  std::string workload, namespace_name, observe = "60s", name, socket, kubeconfig;
  bool yes = false, undo = false;
};

int fail(const std::string& message, const std::string& hint = "") {
  std::cerr << "corral contain: " << message << (hint.empty() ? "" : " (hint: " + hint + ")")
            << "\n";
  return 1;
}

// A policy of corral contain: its name, namespace and what contain recorded in it.
struct Contained {
  std::string name, namespace_name, workload, id, previous_posture = "-";
  bool dry_run = false;
  std::string pod; // "" outside Kubernetes
};

// Where contain writes its changes: the agent (standalone), or the Kubernetes API (the
// agent takes its policies and annotations from there).
class Writer {
public:
  virtual ~Writer() = default;
  // Creates or replaces the policy (`yaml` for the agent, `json` for the API).
  virtual bool apply(const std::string& name, const std::string& ns, const std::string& yaml,
                     const nlohmann::ordered_json& json) = 0;
  virtual bool set_posture(const std::string& ns, const std::string& value) = 0; // "-": remove
  virtual bool remove(const Contained& c) = 0;
  virtual std::vector<Contained> contained() = 0;
  // The namespace's kubearmor-file-posture now ("-" when unset); nullopt after an error.
  virtual std::optional<std::string> posture(const std::string& ns) = 0;
};

class AgentWriter final : public Writer {
public:
  // `stub` is observe()'s: replaced when the agent restarts.
  AgentWriter(std::unique_ptr<api::Agent::Stub>& stub, std::string socket)
      : stub_(stub), socket_(std::move(socket)) {}

  bool apply(const std::string& name, const std::string&, const std::string& yaml,
             const nlohmann::ordered_json&) override {
    api::ApplyRequest req;
    req.set_who(who("contain"));
    auto* f = req.add_files();
    f->set_name(name + ".yaml");
    f->set_text(yaml);
    api::ApplyReply reply;
    const auto status = stub_->Apply(unary_context().get(), req, &reply);
    if (!status.ok()) return report(status, "contain", socket_), false;
    for (const auto& w : reply.warnings()) std::cerr << "warning: " << w << "\n";
    return report_failed(reply.failed(), "contain") == 0;
  }

  bool set_posture(const std::string& ns, const std::string& value) override {
    api::AnnotateRequest req;
    req.set_who(who("contain"));
    req.set_namespace_(ns);
    req.set_overwrite(true);
    if (value == "-") {
      req.add_remove(kPosture);
    } else {
      (*req.mutable_set())[kPosture] = value;
    }
    api::AnnotateReply reply;
    const auto status = stub_->Annotate(unary_context().get(), req, &reply);
    if (!status.ok()) return report(status, "contain", socket_), false;
    return report_failed(reply.failed(), "contain") == 0;
  }

  bool remove(const Contained& c) override {
    api::DeleteRequest req;
    req.set_who(who("contain"));
    req.set_kind("KubeArmorPolicy");
    req.set_namespace_(c.namespace_name);
    req.set_name(c.name);
    api::DeleteReply reply;
    const auto status = stub_->Delete(unary_context().get(), req, &reply);
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND)
      return report(status, "contain", socket_), false;
    return true;
  }

  std::vector<Contained> contained() override {
    std::vector<Contained> out;
    api::PolicyList list;
    if (!stub_->ListPolicies(unary_context().get(), api::ListRequest{}, &list).ok()) return out;
    for (const auto& p : list.policies()) {
      if (p.text().find(kWorkloadKey) == std::string::npos) continue;
      Contained c{p.name(), p.namespace_(), "", "", "-", p.dry_run(), ""};
      // The annotations, read back from the text contain wrote (one "key": "value" a line).
      const auto value = [&](const char* key) {
        const std::string k = std::string("\"") + key + "\": ";
        const auto at = p.text().find(k);
        if (at == std::string::npos) return std::string();
        const auto end = p.text().find('\n', at);
        const auto v = nlohmann::json::parse(p.text().substr(at + k.size(), end - at - k.size()),
                                             nullptr, false);
        return v.is_string() ? v.get<std::string>() : std::string();
      };
      c.workload = value(kWorkloadKey);
      c.id = value(kIdKey);
      c.previous_posture = value(kPostureKey);
      c.pod = value(kPodKey);
      out.push_back(std::move(c));
    }
    return out;
  }

  std::optional<std::string> posture(const std::string& ns) override {
    api::ProfileRequest req;
    req.set_namespace_(ns);
    api::ProfileReply reply;
    if (!stub_->Profile(unary_context().get(), req, &reply).ok() || reply.workloads().empty())
      return std::nullopt;
    const auto& a = reply.workloads(0).namespace_annotations();
    const auto it = a.find(kPosture);
    return it == a.end() ? std::string("-") : it->second;
  }

private:
  std::unique_ptr<api::Agent::Stub>& stub_;
  std::string socket_;
};

// The Kubernetes API through a kubeconfig: the objects kubectl would write. Each change is
// waited for at the agent (it watches the API), so that what follows sees it in force.
class KubeWriter final : public Writer {
public:
  KubeWriter(std::unique_ptr<kube::Client> client, std::unique_ptr<api::Agent::Stub>& stub)
      : client_(std::move(client)), stub_(stub) {}

  bool apply(const std::string& name, const std::string& ns, const std::string&,
             const nlohmann::ordered_json& json) override {
    const std::string dir =
        "/apis/security.kubearmor.com/v1/namespaces/" + ns + "/kubearmorpolicies";
    auto r = call("POST", dir, json.dump());
    if (r && r->status == 409) { // exists: replace it at its resourceVersion
      auto got = call("GET", dir + "/" + name, "");
      if (!got || got->status != 200) return failed("read policy " + name, got);
      auto body = json;
      body["metadata"]["resourceVersion"] =
          nlohmann::json::parse(got->body)["metadata"]["resourceVersion"];
      r = call("PUT", dir + "/" + name, body.dump());
    }
    if (!r || r->status / 100 != 2) return failed("write KubeArmorPolicy " + ns + "/" + name, r);
    const bool dry = json["metadata"].contains("annotations") &&
                     json["metadata"]["annotations"].value("kubearmor-policy", "") == "audited";
    return await_agent("the agent to take KubeArmorPolicy " + name, [&] {
      api::PolicyList list;
      api::ListRequest req;
      req.set_namespace_(ns);
      if (!stub_->ListPolicies(unary_context().get(), req, &list).ok()) return false;
      return std::any_of(list.policies().begin(), list.policies().end(),
                         [&](const auto& p) { return p.name() == name && p.dry_run() == dry; });
    });
  }

  bool set_posture(const std::string& ns, const std::string& value) override {
    nlohmann::json patch;
    patch["metadata"]["annotations"][kPosture] =
        value == "-" ? nlohmann::json(nullptr) : nlohmann::json(value);
    const auto r =
        call("PATCH", "/api/v1/namespaces/" + ns, patch.dump(), "application/merge-patch+json");
    if (!r || r->status / 100 != 2) return failed("annotate namespace " + ns, r);
    return await_agent("the agent to take namespace " + ns + "'s annotation", [&] {
      api::ProfileRequest req;
      req.set_namespace_(ns);
      api::ProfileReply reply;
      if (!stub_->Profile(unary_context().get(), req, &reply).ok()) return false;
      if (reply.workloads().empty()) return true; // nothing runs there to tell by
      const auto& a = reply.workloads(0).namespace_annotations();
      const auto it = a.find(kPosture);
      return value == "-" ? it == a.end() : it != a.end() && it->second == value;
    });
  }

  bool remove(const Contained& c) override {
    const auto r = call("DELETE",
                        "/apis/security.kubearmor.com/v1/namespaces/" + c.namespace_name +
                            "/kubearmorpolicies/" + c.name,
                        "");
    if (!r || (r->status / 100 != 2 && r->status != 404))
      return failed("delete KubeArmorPolicy " + c.name, r);
    return await_agent("the agent to lift KubeArmorPolicy " + c.name, [&] {
      api::PolicyList list;
      api::ListRequest req;
      req.set_namespace_(c.namespace_name);
      if (!stub_->ListPolicies(unary_context().get(), req, &list).ok()) return false;
      return std::none_of(list.policies().begin(), list.policies().end(),
                          [&](const auto& p) { return p.name() == c.name; });
    });
  }

  std::vector<Contained> contained() override {
    std::vector<Contained> out;
    const auto r = call("GET", "/apis/security.kubearmor.com/v1/kubearmorpolicies", "");
    if (!r || r->status != 200) return failed("list KubeArmorPolicies", r), out;
    const auto list = nlohmann::json::parse(r->body, nullptr, false);
    if (!list.is_object()) return out;
    for (const auto& item : list.value("items", nlohmann::json::array())) {
      const auto& md = item.value("metadata", nlohmann::json::object());
      const auto a = md.value("annotations", nlohmann::json::object());
      if (!a.contains(kWorkloadKey)) continue;
      out.push_back(Contained{md.value("name", ""), md.value("namespace", ""),
                              a.value(kWorkloadKey, ""), a.value(kIdKey, ""),
                              a.value(kPostureKey, "-"),
                              a.value("kubearmor-policy", "") == "audited", a.value(kPodKey, "")});
    }
    return out;
  }

  std::optional<std::string> posture(const std::string& ns) override {
    const auto r = call("GET", "/api/v1/namespaces/" + ns, "");
    if (!r || r->status != 200) return failed("read namespace " + ns, r), std::nullopt;
    const auto a = nlohmann::json::parse(r->body, nullptr, false)["metadata"].value(
        "annotations", nlohmann::json::object());
    return a.value(kPosture, "-");
  }

private:
  Result<kube::Client::Response> call(const std::string& method, const std::string& path,
                                      const std::string& body,
                                      const std::string& type = "application/json") {
    return client_->request(method, path, body, type);
  }
  static bool failed(const std::string& what, const Result<kube::Client::Response>& r) {
    std::cerr << "corral contain: " << what << ": "
              << (!r ? r.error().to_string()
                     : "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 300))
              << "\n";
    return false;
  }
  template <class Pred> bool await_agent(const std::string& what, Pred done) {
    for (int i = 0; i < 100; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::cerr << "corral contain: waited 10 s for " << what << " (is the agent connected to the "
              << "API? corral get status)\n";
    return false;
  }
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<api::Agent::Stub>& stub_;
};

// A client of the API the agent takes its policies from: --kubeconfig, else $KUBECONFIG,
// else ~/.kube/config, else the pod's service account (in a pod).
Result<std::unique_ptr<kube::Client>> kube_client(std::string path) {
  if (path.empty() && std::getenv("KUBECONFIG") != nullptr) path = std::getenv("KUBECONFIG");
  if (path.empty() && std::getenv("HOME") != nullptr) {
    const std::string home = std::string(std::getenv("HOME")) + "/.kube/config";
    if (::access(home.c_str(), R_OK) == 0) path = home;
  }
  Result<kube::Config> config =
      !path.empty() ? kube::kubeconfig_config(path)
      : kube::in_cluster_present(kube::kServiceAccountDir)
          ? kube::in_cluster_config(kube::kServiceAccountDir)
          : Result<kube::Config>(Error{"no kubeconfig to write through",
                                       "--kubeconfig PATH (or KUBECONFIG) of an identity that "
                                       "may write KubeArmorPolicies and annotate namespaces",
                                       0});
  if (!config) return config.error();
  return kube::Client::make(std::move(*config));
}

// Restores the namespace's file posture as it was (unless another contained workload of
// the namespace still needs block), then removes the policy.
int undo(Writer& writer, const Contained& c, const std::vector<Contained>& all) {
  const bool others = std::any_of(all.begin(), all.end(), [&](const Contained& o) {
    return o.namespace_name == c.namespace_name && o.name != c.name;
  });
  if (others) {
    std::cout << "namespace " << c.namespace_name
              << " keeps kubearmor-file-posture=block: other workloads there are contained\n";
  } else if (!writer.set_posture(c.namespace_name, c.previous_posture)) {
    return fail("could not restore namespace " + c.namespace_name + "'s " + kPosture +
                    "; the policy stays in place",
                "run corral contain --undo again");
  }
  if (!writer.remove(c))
    return fail("could not delete policy " + c.name, "run corral contain --undo again");
  std::cout << "undone: KubeArmorPolicy/" << c.name << " deleted, namespace " << c.namespace_name
            << " " << kPosture << " "
            << (others                      ? std::string("kept")
                : c.previous_posture == "-" ? std::string("removed (as before)")
                                            : "restored to " + c.previous_posture)
            << "\n";
  return 0;
}

// The contained policy of WORKLOAD (by namespace/name, name, or id prefix).
std::optional<Contained> find_contained(const std::vector<Contained>& all, const Options& o) {
  for (const auto& c : all) {
    const auto slash = c.workload.find('/');
    const std::string name = slash == std::string::npos ? c.workload : c.workload.substr(slash + 1);
    if (!o.namespace_name.empty() && c.namespace_name != o.namespace_name) continue;
    if (c.workload == o.workload || name == o.workload || c.name == o.workload ||
        (!c.pod.empty() && c.pod == o.workload) ||
        (o.workload.size() >= 12 && c.id.starts_with(o.workload)))
      return c;
  }
  return std::nullopt;
}

std::atomic<bool> interrupted{false};

// Asks on the terminal; false when there is none or the answer is not yes.
bool confirm(const std::string& question) {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const std::string q = question + " [y/N] ";
  (void)!::write(fd, q.data(), q.size());
  char buf[16] = {};
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 && (buf[0] == 'y' || buf[0] == 'Y');
}

bool still_running(api::Agent::Stub& stub, const std::string& id) {
  api::ListRequest req;
  api::WorkloadList list;
  if (!stub.ListWorkloads(unary_context().get(), req, &list).ok()) return true; // unknown
  return std::any_of(list.workloads().begin(), list.workloads().end(),
                     [&](const api::WorkloadInfo& w) { return w.id() == id && w.pid() != 0; });
}

enum class Observed { Done, Interrupted, WorkloadGone, AgentGone };

// Streams the workload's would-be denials for `seconds`, with a progress line (a thread of
// its own also notices the workload exiting). Follows the agent across a restart: the
// policy is in its state dir and comes back with it.
Observed observe(std::unique_ptr<api::Agent::Stub>& stub, const api::WorkloadInfo& w,
                 int64_t seconds, const std::string& socket, uint64_t* would_deny) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  std::mutex out_mu;
  std::atomic<bool> gone{false};
  std::atomic<uint64_t> denials{0};
  auto agent_lost = std::chrono::steady_clock::time_point{};
  while (std::chrono::steady_clock::now() < end) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         end - std::chrono::steady_clock::now()));
    api::WatchRequest req;
    req.set_follow(true);
    req.set_only_new(true);
    req.set_container(w.id());
    std::atomic<bool> done{false};
    api::Agent::Stub* s = stub.get();
    std::thread watcher([&] {
      auto last_progress = std::chrono::steady_clock::now();
      int misses = 0; // the workload not listed: gone after a second of it
      while (!done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        if (done) break;
        misses = still_running(*s, w.id()) ? 0 : misses + 1;
        if (interrupted || misses >= 4) {
          gone = !interrupted;
          ctx.TryCancel();
          break;
        }
        const auto now = std::chrono::steady_clock::now();
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(end - now).count();
        std::lock_guard lock(out_mu);
        if (tty) {
          std::cout << "\r\x1b[Kobserving " << w.name() << ": " << left << " s left, " << denials
                    << " would-be denials" << std::flush;
        } else if (now - last_progress >= std::chrono::seconds(10)) {
          last_progress = now;
          std::cout << "observing " << w.name() << ": " << left << " s left, " << denials
                    << " would-be denials" << std::endl;
        }
      }
    });
    auto reader = stub->Watch(&ctx, req);
    api::Event ev;
    bool read_any = false;
    while (reader->Read(&ev)) {
      read_any = true;
      if (ev.has_alert()) {
        const auto a = events::from_proto(ev.alert());
        if (a.action == "Audit (Block)") {
          ++denials;
          std::lock_guard lock(out_mu);
          std::cout << (tty ? "\r\x1b[K" : "") << "would deny: " << a.operation << " " << a.resource
                    << " by " << (a.source.empty() ? "?" : a.source) << " (pid " << a.pid << ", "
                    << a.policy_name << ")" << std::endl;
        }
      }
    }
    const auto status = reader->Finish();
    done = true;
    watcher.join();
    *would_deny = denials;
    if (interrupted) return Observed::Interrupted;
    if (gone) return Observed::WorkloadGone;
    const auto now = std::chrono::steady_clock::now();
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !read_any) {
      // The agent is away (restarting?): wait for it, up to 60 s.
      if (agent_lost == std::chrono::steady_clock::time_point{}) {
        agent_lost = now;
        std::lock_guard lock(out_mu);
        std::cout << (tty ? "\r\x1b[K" : "") << "the agent does not answer; waiting for it"
                  << std::endl;
      }
      if (now - agent_lost > std::chrono::seconds(60)) return Observed::AgentGone;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      stub = api::Agent::NewStub(
          grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
      continue;
    }
    agent_lost = {};
  }
  if (tty) std::cout << "\r\x1b[K";
  return Observed::Done;
}

int contain(const Options& o) {
  auto stub = connect(o.socket, "contain");
  if (!stub) return 1;
  api::StatusReply status;
  if (const auto s = stub->Status(unary_context().get(), api::StatusRequest{}, &status); !s.ok())
    return report(s, "contain", o.socket);
  // In Kubernetes mode the API is the one source of policies and annotations: write there.
  std::unique_ptr<Writer> writer;
  if (status.has_kubernetes()) {
    auto client = kube_client(o.kubeconfig);
    if (!client) {
      return fail("the agent takes its policies from the Kubernetes API: " +
                      client.error().message + "; nothing was changed",
                  client.error().hint);
    }
    writer = std::make_unique<KubeWriter>(std::move(*client), stub);
  } else {
    writer = std::make_unique<AgentWriter>(stub, o.socket);
  }
  auto all = writer->contained();
  if (o.undo) {
    const auto c = find_contained(all, o);
    if (!c) {
      return fail("workload " + o.workload +
                      " is not contained (no policy of corral contain "
                      "names it); nothing was changed",
                  "corral get policies");
    }
    return undo(*writer, *c, all);
  }
  auto seconds = parse_duration(o.observe, "--observe");
  if (!seconds) return fail(seconds.error().to_string());
  if (*seconds <= 0) {
    return fail("--observe " + o.observe +
                    ": the observe window must be longer than 0, nothing "
                    "was changed",
                "--observe 30s (what would be denied is shown during it)");
  }
  if (!o.yes && ::isatty(STDIN_FILENO) == 0) {
    return fail("no terminal to confirm the switch to block on, nothing was changed",
                "--yes switches after the observe window without asking");
  }
  if (const auto c = find_contained(all, o)) {
    return fail("workload " + o.workload + " is already contained by KubeArmorPolicy/" + c->name +
                    (c->dry_run ? " (still in dry run)" : "") + "; nothing was changed",
                "corral contain --undo " + o.workload + " first");
  }
  const auto reply = read_profiles(*stub, {o.namespace_name, "", "", true, 0}, "contain", o.socket);
  if (!reply) return 1;
  auto w = pick_workload(*reply, o.workload, o.namespace_name);
  if (!w) return fail(w.error().message + "; nothing was changed", w.error().hint);
  const auto& info = w->workload();
  const auto now = writer->posture(info.namespace_());
  if (!now) return fail("could not read namespace " + info.namespace_() + "; nothing was changed");
  const std::string previous = *now;

  DiscoveredPolicy d;
  d.name = o.name.empty() ? discovered_name(*w, "corral-contain-") : o.name;
  d.annotations = {{kWorkloadKey, info.namespace_() + "/" + info.name()},
                   {kIdKey, info.id()},
                   {kPodKey, info.pod()},
                   {kPostureKey, previous},
                   // Locked (issue 12): no other policy can widen what the workload may run.
                   {policy::kLockAnnotation, "true"}};
  d.dry_run = true;
  auto dry = policy_yaml(*w, d);
  if (!dry) return fail(dry.error().message + "; nothing was changed", dry.error().hint);
  const auto dry_json = policy_json(*w, d);
  d.dry_run = false;
  const auto enforced = policy_yaml(*w, d);
  const auto enforced_json = policy_json(*w, d);

  const auto allowed = std::count_if(w->processes().begin(), w->processes().end(),
                                     [](const api::SeenItem& s) { return !s.changed(); });
  std::cout << "1/4 discovered what " << info.name() << " runs: " << allowed
            << " programs allowed (corral discover " << info.name() << " shows the policy)\n";
  for (const auto& s : w->processes()) {
    if (s.changed())
      std::cout << "    left out: " << s.name()
                << " (created or changed after the workload started, not from its image)\n";
  }
  Contained mine{d.name, info.namespace_(), "", info.id(), previous, true, info.pod()};
  if (!writer->apply(d.name, info.namespace_(), *dry, *dry_json)) {
    (void)writer->remove(mine); // written but not taken (Kubernetes): taken back
    return fail("nothing was changed");
  }
  std::cout << "2/4 applied KubeArmorPolicy/" << d.name << " in dry run (Audit (Block))\n";
  if (previous != "block") {
    if (!writer->set_posture(info.namespace_(), "block")) {
      (void)writer->remove(mine);
      return fail("could not set " + std::string(kPosture) + "=block on namespace " +
                  info.namespace_() + "; the dry-run policy was removed again, nothing changed");
    }
    std::cout << "    namespace " << info.namespace_() << ": " << kPosture << "=block (was "
              << (previous == "-" ? "unset" : previous)
              << "); its other workloads with allow-lists are blocked by it too\n";
  }
  std::signal(SIGINT, [](int) { interrupted = true; });
  std::cout << "3/4 observing for " << *seconds << " s what would be denied:\n";
  uint64_t would_deny = 0;
  const auto observed = observe(stub, info, *seconds, o.socket, &would_deny);
  std::signal(SIGINT, SIG_DFL);
  const auto back_out = [&](const std::string& why) {
    all = writer->contained();
    const int rc = undo(*writer, mine, all);
    return fail(why + (rc == 0 ? "; the previous state is restored"
                               : "; restoring the previous state failed: run corral contain "
                                 "--undo " +
                                     o.workload));
  };
  switch (observed) {
  case Observed::Interrupted: return back_out("interrupted");
  case Observed::WorkloadGone:
    return back_out("workload " + info.name() + " exited during contain");
  case Observed::AgentGone:
    return fail("the agent did not come back within 60 s: " + info.name() +
                    " stays in dry run (nothing is denied)",
                "when the agent runs again: corral contain --undo " + o.workload);
  case Observed::Done: break;
  }
  std::cout << would_deny << " would-be denials during the observe window\n";
  if (!o.yes && !confirm("switch " + info.name() + " to block?")) return back_out("not confirmed");
  if (!writer->apply(d.name, info.namespace_(), *enforced, *enforced_json))
    return back_out("switching to block failed");
  std::cout << "4/4 " << info.name() << " is contained: only its " << allowed
            << " programs may start; running processes keep running\n"
            << "undo: corral contain --undo " << o.workload
            << (o.namespace_name.empty() ? "" : " -n " + o.namespace_name) << "\n";
  return 0;
}

} // namespace

void add_contain(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "contain", "Contain a workload: discover, dry run and observe, then block (or --undo)");
  cmd->add_option("WORKLOAD", o->workload, "Container name, pod name, or container id (prefix)")
      ->required();
  cmd->add_option("-n,--namespace", o->namespace_name, "The workload's namespace");
  cmd->add_option("--observe", o->observe,
                  "How long to show what would be denied before blocking (30s, 5m)")
      ->capture_default_str();
  cmd->add_flag("--yes", o->yes, "Switch to block after the observe window without asking");
  cmd->add_flag("--undo", o->undo,
                "Restore exactly the policies and namespace annotations before contain");
  cmd->add_option("--name", o->name, "The policy's name (default: corral-contain-<container>)");
  cmd->add_option("--kubeconfig", o->kubeconfig,
                  "In Kubernetes mode: the kubeconfig to write the policy and the namespace "
                  "annotation with (default: $KUBECONFIG, ~/.kube/config, in-cluster)");
  add_socket_option(cmd, o->socket);
  cmd->footer(
      "Steps: 1 discover the allow-list (corral discover), 2 apply it in dry run and set the\n"
      "namespace's kubearmor-file-posture=block, 3 show live what would be denied during\n"
      "--observe, 4 switch to block when confirmed. Running processes are never killed.\n"
      "Interrupted (Ctrl-C), not confirmed, or the workload exits: the previous state is\n"
      "restored. Example: corral contain nginx -n default --observe 2m");
  cmd->callback([o, &exit_code] { exit_code = contain(*o); });
}

} // namespace corral::cli
