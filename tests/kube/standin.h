// The Kubernetes API stand-in (../shared/kube-standin) as a child process of a test, and
// what the tests share: its admin actions, objects, and a recorder of reflector callbacks.
// No kube-apiserver can run on the test machines; the stand-in speaks its REST API.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/reflector.h"

namespace corral::kube::test {

using nlohmann::json;

// One stand-in on 127.0.0.1 with its state in a fresh temp folder; stopped (by its pid) and
// removed by the destructor.
class Standin {
public:
  // Fails the current test (and returns null) when it does not come up within 20 s.
  static std::unique_ptr<Standin> start(const std::vector<std::string>& extra_args = {});
  ~Standin();

  std::string state_dir() const { return tmp_ + "/api"; }
  std::string tmp() const { return tmp_; }
  std::string address() const { return address_; } // https://127.0.0.1:PORT
  std::string port() const;
  std::string admin_token() const; // tokens.csv line 1

  // In-cluster config read from the stand-in's env file and serviceaccount/ folder (sets
  // KUBERNETES_SERVICE_HOST/PORT in this process).
  Config in_cluster() const;
  std::unique_ptr<Client> in_cluster_client() const;
  Client& admin(); // a client with the kubeconfig's admin token

  // POST /_standin/ACTION with `body`; the parsed answer (ADD_FAILURE on an error).
  json admin_post(const std::string& action, const json& body = json::object());
  json requests(); // /_standin/requests items
  json state();    // /_standin/state
  void apply(const json& object_or_list);
  void remove_configmap(const std::string& ns, const std::string& name);

private:
  Standin() = default;
  std::string tmp_, address_;
  pid_t pid_ = -1;
  std::unique_ptr<Client> admin_;
};

json configmap(const std::string& ns, const std::string& name, const std::string& value = "v");
json pod(const std::string& ns, const std::string& name, const std::string& node);

// Records what a reflector reports; waits for conditions on it.
struct Recorder {
  struct Event {
    EventType type;
    std::string name, rv;
    json object;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<json>> replaces;
  std::vector<Event> events;
  std::vector<std::string> logs;

  Reflector::Options options(const std::string& path);
  // Waits up to `timeout` for pred() (called under mu); true when it held.
  bool wait(const std::function<bool()>& pred,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  size_t replace_count();
  size_t event_count();
};

std::vector<std::string> names(const std::vector<json>& items);

// A test with its own stand-in and an in-cluster client, and reflectors started on it.
class StandinTest : public ::testing::Test {
protected:
  void SetUp() override {
    api = Standin::start();
    ASSERT_NE(api, nullptr);
    client = api->in_cluster_client();
    ASSERT_NE(client, nullptr);
  }
  std::unique_ptr<Reflector> start(Reflector::Options o) {
    auto r = Reflector::start(*client, std::move(o));
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::unique_ptr<Standin> api;
  std::unique_ptr<Client> client;
};

} // namespace corral::kube::test
