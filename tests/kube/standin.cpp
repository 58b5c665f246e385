#include "standin.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace corral::kube::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

} // namespace

std::unique_ptr<Standin> Standin::start(const std::vector<std::string>& extra_args) {
  std::unique_ptr<Standin> s(new Standin());
  char tmpl[] = "/tmp/kube-client-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    return nullptr;
  }
  s->tmp_ = tmpl;
  std::vector<std::string> args = {"python3",      KUBE_STANDIN_PATH, "--state-dir",
                                   s->state_dir(), "--listen",        "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  const std::string log = s->tmp_ + "/standin.log";
  s->pid_ = fork();
  if (s->pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a crashed test binary
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (trimmed(read_file(s->state_dir() + "/address")).empty()) {
    int st = 0;
    if (waitpid(s->pid_, &st, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      ADD_FAILURE() << "the kube stand-in exited: " << read_file(log);
      return nullptr;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the kube stand-in did not start within 20 s: " << read_file(log);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  s->address_ = trimmed(read_file(s->state_dir() + "/address"));
  auto config = kubeconfig_config(s->state_dir() + "/kubeconfig");
  if (!config) {
    ADD_FAILURE() << config.error().to_string();
    return nullptr;
  }
  auto admin = Client::make(*config);
  if (!admin) {
    ADD_FAILURE() << admin.error().to_string();
    return nullptr;
  }
  s->admin_ = std::move(*admin);
  return s;
}

Standin::~Standin() {
  admin_.reset();
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int st = 0;
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = waitpid(pid_, &st, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
    }
  }
  std::error_code ec;
  if (!tmp_.empty()) std::filesystem::remove_all(tmp_, ec);
}

std::string Standin::port() const {
  return address_.substr(address_.rfind(':') + 1);
}

std::string Standin::admin_token() const {
  const std::string csv = read_file(state_dir() + "/tokens.csv");
  return csv.substr(0, csv.find(','));
}

Config Standin::in_cluster() const {
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", port().c_str(), 1);
  auto c = in_cluster_config(state_dir() + "/serviceaccount");
  EXPECT_TRUE(c.ok()) << c.error().to_string();
  return c.ok() ? *c : Config{};
}

std::unique_ptr<Client> Standin::in_cluster_client() const {
  auto c = Client::make(in_cluster());
  EXPECT_TRUE(c.ok()) << c.error().to_string();
  return c.ok() ? std::move(*c) : nullptr;
}

Client& Standin::admin() {
  return *admin_;
}

json Standin::admin_post(const std::string& action, const json& body) {
  auto r = admin_->request("POST", "/_standin/" + action, body.dump());
  if (!r) {
    ADD_FAILURE() << "admin " << action << ": " << r.error().to_string();
    return {};
  }
  EXPECT_EQ(r->status, 200) << action << ": " << r->body;
  return json::parse(r->body, nullptr, false);
}

json Standin::requests() {
  auto r = admin_->request("GET", "/_standin/requests");
  if (!r || r->status != 200) {
    ADD_FAILURE() << "GET /_standin/requests failed";
    return json::array();
  }
  return json::parse(r->body)["items"];
}

json Standin::state() {
  auto r = admin_->request("GET", "/_standin/state");
  if (!r || r->status != 200) {
    ADD_FAILURE() << "GET /_standin/state failed";
    return json::object();
  }
  return json::parse(r->body);
}

void Standin::apply(const json& object_or_list) {
  admin_post("objects", object_or_list);
}

void Standin::remove_configmap(const std::string& ns, const std::string& name) {
  auto r = admin_->request(
      "DELETE", "/_standin/objects?apiVersion=v1&kind=ConfigMap&namespace=" + ns + "&name=" + name);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200) << r->body;
}

json configmap(const std::string& ns, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"key", value}}}};
}

json pod(const std::string& ns, const std::string& name, const std::string& node) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
          {"status", {{"phase", "Running"}}}};
}

Reflector::Options Recorder::options(const std::string& path) {
  Reflector::Options o;
  o.path = path;
  o.replace = [this](std::vector<json>&& items) {
    std::lock_guard lock(mu);
    replaces.push_back(std::move(items));
    cv.notify_all();
  };
  o.event = [this](EventType t, json&& obj) {
    std::lock_guard lock(mu);
    Event e{t, obj["metadata"].value("name", ""), obj["metadata"].value("resourceVersion", ""),
            std::move(obj)};
    events.push_back(std::move(e));
    cv.notify_all();
  };
  o.log = [this](const std::string& line) {
    std::lock_guard lock(mu);
    logs.push_back(line);
  };
  return o;
}

bool Recorder::wait(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu);
  return cv.wait_for(lock, timeout, pred);
}

size_t Recorder::replace_count() {
  std::lock_guard lock(mu);
  return replaces.size();
}

size_t Recorder::event_count() {
  std::lock_guard lock(mu);
  return events.size();
}

std::vector<std::string> names(const std::vector<json>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i["metadata"].value("name", ""));
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace corral::kube::test
