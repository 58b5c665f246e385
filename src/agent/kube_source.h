// Kubernetes mode: the API server is the agent's one source of policies, namespace
// annotations and pod identity (issue 8). Five reflectors (kube/reflector.h) list and watch
// KubeArmor's three policy kinds, the namespaces and this node's pods, and hand what they
// see to the Agent like any other source. An object `corral validate` refuses is reported
// as a core/v1 Event on it and changes nothing.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "core/result.h"
#include "kube/config.h"

namespace corral::agent {

class KubeSource {
public:
  struct Options {
    std::string node; // pods are watched for this node only (spec.nodeName)
    std::function<void(const std::string&)> log;
    // Reconnect backoff cap: a change made while the API was away is applied within about
    // this much (plus one request) after it is back.
    std::chrono::milliseconds max_backoff{1000};
  };

  // Starts watching; returns at once (an unreachable API is retried for the source's life,
  // the agent enforcing its last known state meanwhile). Fails only on a bad config.
  static Result<std::unique_ptr<KubeSource>> start(kube::Config config, Agent& agent,
                                                   Options options);
  ~KubeSource();
  KubeSource(const KubeSource&) = delete;
  KubeSource& operator=(const KubeSource&) = delete;

  [[nodiscard]] KubernetesStatus status() const;
  // Ends every watch; no Agent call happens after it returns. Idempotent.
  void stop();

  // The name of the Event reporting an invalid generation of the object with this uid: the
  // same on every node, so that one Event is made per generation in the whole cluster.
  static std::string event_name(const std::string& uid, int64_t generation);

  // Who changed an object last: the manager (and operation) of its newest managedFields
  // entry, for the PolicyChange alert; "unknown (no managedFields)" without any.
  static std::string manager_of(const nlohmann::json& object);

private:
  struct Impl;
  explicit KubeSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace corral::agent
