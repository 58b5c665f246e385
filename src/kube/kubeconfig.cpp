// kubeconfig files as clientcmd (k8s.io/client-go/tools/clientcmd) reads one: current-context,
// its cluster and user, *-data fields base64, file paths relative to the kubeconfig's folder.
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "core/strings.h"
#include "kube/config.h"
#include "kube/util.h"

namespace corral::kube {
namespace {

// yaml-cpp: a missing key of a const node is an invalid node, whose Type() throws.
bool is(const YAML::Node& n, YAML::NodeType::value type) {
  return n.IsDefined() && n.Type() == type;
}

// Field lookups that turn every problem into an Error naming the file, the line and the field.
class Reader {
public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  Error error(const YAML::Node& at, const std::string& field, const std::string& why,
              std::string hint = {}) const {
    std::string where = path_;
    if (at.IsDefined() && at.Mark().line >= 0)
      where +=
          ":" + std::to_string(at.Mark().line + 1) + ":" + std::to_string(at.Mark().column + 1);
    return Error{"kubeconfig " + where + ": " + field + ": " + why, std::move(hint)};
  }

  // A string field; "" when absent or null.
  Result<std::string> str(const YAML::Node& parent, const std::string& key,
                          const std::string& field) const {
    const YAML::Node n = parent[key];
    if (!n.IsDefined() || n.IsNull()) return std::string();
    if (!is(n, YAML::NodeType::Scalar)) return error(n, field + "." + key, "expected a string");
    return n.Scalar();
  }

  // The `inner` map of the entry called `name` in the list `list` (clusters, users, contexts).
  Result<YAML::Node> named(const YAML::Node& root, const std::string& list, const std::string& name,
                           const std::string& inner) const {
    const YAML::Node entries = root[list];
    if (entries.IsDefined() && !entries.IsNull() && !entries.IsSequence())
      return error(entries, list, "expected a list");
    if (is(entries, YAML::NodeType::Sequence)) {
      for (const auto& e : entries) {
        if (!is(e, YAML::NodeType::Map) || !is(e["name"], YAML::NodeType::Scalar) ||
            e["name"].Scalar() != name)
          continue;
        const YAML::Node n = e[inner];
        if (n.IsDefined() && !n.IsNull() && !n.IsMap())
          return error(n, list + "[" + name + "]." + inner, "expected a map");
        return is(n, YAML::NodeType::Map) ? n : YAML::Node(YAML::NodeType::Map);
      }
    }
    return error(root, list, "no entry named \"" + name + "\"",
                 "the current context refers to it; add it or fix the context");
  }

  // A file path field, made absolute against the kubeconfig's folder (clientcmd ResolvePaths).
  Result<std::string> file(const YAML::Node& parent, const std::string& key,
                           const std::string& field) const {
    auto v = str(parent, key, field);
    if (!v || v->empty()) return v;
    const std::filesystem::path p(*v);
    if (p.is_absolute()) return *v;
    return (std::filesystem::path(path_).parent_path() / p).lexically_normal().string();
  }

  // A base64 *-data field, decoded.
  Result<std::string> data(const YAML::Node& parent, const std::string& key,
                           const std::string& field) const {
    auto v = str(parent, key, field);
    if (!v || v->empty()) return v;
    auto decoded = base64_decode(*v);
    if (!decoded) return error(parent[key], field + "." + key, "not valid base64");
    return *decoded;
  }

private:
  std::string path_;
};

Result<void> check_cluster(const Reader& r, const YAML::Node& cluster, const std::string& field) {
  const YAML::Node skip = cluster["insecure-skip-tls-verify"];
  if (is(skip, YAML::NodeType::Scalar) && to_lower(skip.Scalar()) == "true")
    return r.error(skip, field + ".insecure-skip-tls-verify",
                   "true is refused: Corral always verifies the API server's certificate",
                   "remove it and give the cluster's CA as certificate-authority or "
                   "certificate-authority-data");
  for (const char* key : {"tls-server-name", "proxy-url"}) {
    if (cluster[key].IsDefined())
      return r.error(cluster[key], field + "." + key, "not supported by Corral's client",
                     "remove it, or use a kubeconfig that reaches the API server directly");
  }
  return {};
}

Result<void> check_user(const Reader& r, const YAML::Node& user, const std::string& field) {
  for (const char* key : {"exec", "auth-provider", "username", "password"}) {
    if (user[key].IsDefined())
      return r.error(user[key], field + "." + key, "this kind of credential is not supported",
                     "use a bearer token (token or tokenFile) or a client certificate");
  }
  return {};
}

Result<Config> read_kubeconfig(const Reader& r, const YAML::Node& root, const std::string& path) {
  Config c;
  c.source = "kubeconfig " + path;
  auto current = r.str(root, "current-context", "");
  if (!current) return current.error();
  if (current->empty())
    return r.error(root, "current-context", "not set", "kubectl config use-context NAME");
  auto ctx = r.named(root, "contexts", *current, "context");
  if (!ctx) return ctx.error();
  const std::string ctx_field = "contexts[" + *current + "].context";
  auto cluster_name = r.str(*ctx, "cluster", ctx_field);
  auto user_name = r.str(*ctx, "user", ctx_field);
  auto ns = r.str(*ctx, "namespace", ctx_field);
  if (!cluster_name) return cluster_name.error();
  if (!user_name) return user_name.error();
  if (!ns) return ns.error();
  c.namespace_name = ns->empty() ? "default" : *ns; // clientcmd's default namespace

  auto cluster = r.named(root, "clusters", *cluster_name, "cluster");
  if (!cluster) return cluster.error();
  const std::string cf = "clusters[" + *cluster_name + "].cluster";
  if (auto ok = check_cluster(r, *cluster, cf); !ok) return ok.error();
  auto server = r.str(*cluster, "server", cf);
  auto ca_file = r.file(*cluster, "certificate-authority", cf);
  auto ca_pem = r.data(*cluster, "certificate-authority-data", cf);
  for (const auto* res : {&server, &ca_file, &ca_pem})
    if (!*res) return res->error();
  if (!server->starts_with("https://") && !server->starts_with("http://"))
    return r.error((*cluster)["server"], cf + ".server",
                   server->empty() ? "not set" : "\"" + *server + "\" is not an http(s) URL",
                   "e.g. https://192.0.2.1:6443");
  c.server = *server;
  while (c.server.ends_with('/')) c.server.pop_back();
  c.ca_file = *ca_file;
  c.ca_pem = *ca_pem;
  if (!c.ca_pem.empty()) c.ca_file.clear(); // client-go: CAData takes precedence over CAFile

  YAML::Node user(YAML::NodeType::Map);
  const std::string uf = "users[" + *user_name + "].user";
  if (!user_name->empty()) {
    auto u = r.named(root, "users", *user_name, "user");
    if (!u) return u.error();
    user = *u;
  }
  if (auto ok = check_user(r, user, uf); !ok) return ok.error();
  auto token = r.str(user, "token", uf);
  auto token_file = r.file(user, "tokenFile", uf);
  auto cert_file = r.file(user, "client-certificate", uf);
  auto key_file = r.file(user, "client-key", uf);
  auto cert_pem = r.data(user, "client-certificate-data", uf);
  auto key_pem = r.data(user, "client-key-data", uf);
  for (const auto* res : {&token, &token_file, &cert_file, &key_file, &cert_pem, &key_pem})
    if (!*res) return res->error();
  c.token = std::string(trim(*token));
  c.token_file = *token_file;
  c.client_cert_pem = *cert_pem;
  c.client_key_pem = *key_pem;
  c.client_cert_file = c.client_cert_pem.empty() ? *cert_file : std::string();
  c.client_key_file = c.client_key_pem.empty() ? *key_file : std::string();
  const bool has_cert = !c.client_cert_file.empty() || !c.client_cert_pem.empty();
  const bool has_key = !c.client_key_file.empty() || !c.client_key_pem.empty();
  if (has_cert != has_key)
    return r.error(user, uf,
                   has_cert ? "a client certificate without its key"
                            : "a client key without its certificate",
                   "give both client-certificate[-data] and client-key[-data]");
  return c;
}

} // namespace

Result<Config> kubeconfig_config(const std::string& path) {
  auto text = read_text_file(path, "kubeconfig");
  if (!text)
    return Error{text.error().message, "pass the path of a kubeconfig file", text.error().err};
  const Reader r(path);
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Error{"kubeconfig " + path + ":" + std::to_string(e.mark.line + 1) + ":" +
                     std::to_string(e.mark.column + 1) + ": " + e.msg,
                 "the file is not valid YAML"};
  }
  if (!is(root, YAML::NodeType::Map))
    return r.error(root, "(top level)", "expected a map (kind: Config)");
  try {
    return read_kubeconfig(r, root, path);
  } catch (const YAML::Exception& e) { // e.g. a scalar where a map is indexed
    return Error{"kubeconfig " + path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg,
                 "is it a kubeconfig file?"};
  }
}

} // namespace corral::kube
