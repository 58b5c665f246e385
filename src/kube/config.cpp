// In-cluster configuration, as client-go's rest.InClusterConfig (rest/config.go) builds it.
#include "kube/config.h"

#include <cstdlib>
#include <filesystem>

#include "core/strings.h"
#include "kube/util.h"

namespace corral::kube {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// net.JoinHostPort: an IPv6 literal gets brackets.
std::string join_host_port(const std::string& host, const std::string& port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

} // namespace

bool in_cluster_present(const std::string& sa_dir) {
  std::error_code ec;
  return !env("KUBERNETES_SERVICE_HOST").empty() && !env("KUBERNETES_SERVICE_PORT").empty() &&
         std::filesystem::exists(sa_dir + "/token", ec);
}

Result<Config> in_cluster_config(const std::string& sa_dir) {
  const std::string host = env("KUBERNETES_SERVICE_HOST");
  const std::string port = env("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty())
    return Error{"unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                 "KUBERNETES_SERVICE_PORT must be defined",
                 "run in a pod, or pass a kubeconfig"};
  Config c;
  c.source = "in-cluster";
  c.server = "https://" + join_host_port(host, port);
  c.token_file = sa_dir + "/token";
  // Read now so that a missing token fails here, as in client-go; the client re-reads the
  // file whenever it changes (kubelet rotates projected tokens, by default hourly).
  auto token = read_text_file(c.token_file, "the service-account token");
  if (!token)
    return Error{token.error().message, "is the service account token mounted in this pod?",
                 token.error().err};
  c.token = std::string(trim(*token));
  c.ca_file = sa_dir + "/ca.crt";
  if (auto ca = read_text_file(c.ca_file, "the cluster CA"); !ca)
    return Error{ca.error().message, "the API server's certificate cannot be verified without it",
                 ca.error().err};
  // client-go's in-cluster namespace (clientcmd inClusterClientConfig.Namespace): the
  // service account's namespace file, else "default".
  auto ns = read_text_file(sa_dir + "/namespace", "the pod's namespace");
  c.namespace_name = ns ? std::string(trim(*ns)) : std::string();
  if (c.namespace_name.empty()) c.namespace_name = "default";
  return c;
}

} // namespace corral::kube
