// Where the Kubernetes API server is and how to authenticate to it: from a pod's service
// account (in-cluster) or from a kubeconfig file.
#pragma once

#include <string>

#include "core/result.h"

namespace corral::kube {

struct Config {
  std::string server;  // "https://host:port"
  std::string ca_file; // PEM path, or
  std::string ca_pem;  // inline PEM (kubeconfig certificate-authority-data, decoded)
  std::string
      token_file;    // bearer token file; re-read whenever it changes (projected tokens rotate)
  std::string token; // static bearer token (kubeconfig `token`)
  std::string client_cert_file, client_key_file; // or inline:
  std::string client_cert_pem, client_key_pem;
  std::string namespace_name; // in-cluster `namespace` file, or the kubeconfig context's namespace
  std::string source;         // "in-cluster" or "kubeconfig PATH" (for messages)
};

// The service-account directory every pod gets (unless automountServiceAccountToken is off).
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// In-cluster config exactly as client-go's rest.InClusterConfig reads it: KUBERNETES_SERVICE_HOST
// and KUBERNETES_SERVICE_PORT (IPv6 hosts bracketed), token + ca.crt + namespace in sa_dir.
Result<Config> in_cluster_config(const std::string& sa_dir);
bool in_cluster_present(const std::string& sa_dir); // env vars set and token file exists

// kubeconfig: current-context → cluster (server, certificate-authority[-data]) and user (token,
// tokenFile, client-certificate[-data], client-key[-data]); relative file paths are relative to
// the kubeconfig's directory. `insecure-skip-tls-verify: true` is REFUSED with a clear error (TLS
// is always verified).
Result<Config> kubeconfig_config(const std::string& path);

} // namespace corral::kube
