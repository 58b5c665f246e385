// In-cluster and kubeconfig configuration, used against the stand-in (TLS verified).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "standin.h"

namespace corral::kube::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

// A kubeconfig with one context, for the cases the stand-in's own does not cover.
std::string kubeconfig(const std::string& cluster_fields, const std::string& user_fields) {
  return "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n" + cluster_fields +
         "users:\n- name: u\n  user:\n" + user_fields +
         "contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n"
         "current-context: ctx\n";
}

class KubeConfigTest : public ::testing::Test {
protected:
  void SetUp() override {
    api = Standin::start();
    ASSERT_NE(api, nullptr);
  }
  // GET /api/v1/namespaces/default with `config`: the status, or the transport error.
  std::string get_default_namespace(const Config& config) {
    auto client = Client::make(config);
    if (!client) return "make: " + client.error().to_string();
    auto r = (*client)->request("GET", "/api/v1/namespaces/default");
    if (!r) return "error: " + r.error().to_string();
    return std::to_string(r->status);
  }
  std::unique_ptr<Standin> api;
};

TEST_F(KubeConfigTest, InClusterFromServiceAccountAndEnv) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  const std::string sa = api->state_dir() + "/serviceaccount";
  EXPECT_FALSE(in_cluster_present(sa));
  auto missing = in_cluster_config(sa);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);

  const Config c = api->in_cluster(); // sets the two variables from the stand-in's env file
  EXPECT_NE(read_file(api->state_dir() + "/env").find("KUBERNETES_SERVICE_PORT=" + api->port()),
            std::string::npos);
  EXPECT_TRUE(in_cluster_present(sa));
  EXPECT_FALSE(in_cluster_present(api->tmp() + "/nowhere"));
  EXPECT_EQ(c.server, api->address());
  EXPECT_EQ(c.ca_file, sa + "/ca.crt");
  EXPECT_EQ(c.token_file, sa + "/token");
  EXPECT_EQ(c.namespace_name, "kube-system");
  EXPECT_EQ(c.source, "in-cluster");
  EXPECT_EQ(get_default_namespace(c), "200");

  // net.JoinHostPort: an IPv6 service host is bracketed.
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  auto v6 = in_cluster_config(sa);
  ASSERT_TRUE(v6.ok()) << v6.error().to_string();
  EXPECT_EQ(v6->server, "https://[fd00::1]:" + api->port());

  // No token mounted: an error that says which file.
  auto no_token = in_cluster_config(api->tmp());
  ASSERT_FALSE(no_token.ok());
  EXPECT_NE(no_token.error().message.find(api->tmp() + "/token"), std::string::npos);
}

TEST_F(KubeConfigTest, StandinKubeconfig) {
  auto c = kubeconfig_config(api->state_dir() + "/kubeconfig");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->server, api->address());
  EXPECT_EQ(c->ca_pem, read_file(api->state_dir() + "/ca.crt")); // certificate-authority-data
  EXPECT_TRUE(c->ca_file.empty());
  EXPECT_EQ(c->token, api->admin_token());
  EXPECT_EQ(c->namespace_name, "default");
  EXPECT_EQ(c->source, "kubeconfig " + api->state_dir() + "/kubeconfig");
  EXPECT_EQ(get_default_namespace(*c), "200");

  // Without the token the server answers 401, as a Response.
  Config anonymous = *c;
  anonymous.token.clear();
  EXPECT_EQ(get_default_namespace(anonymous), "401");
}

TEST_F(KubeConfigTest, RelativeFilesAndTokenFile) {
  const std::string dir = api->tmp() + "/kc";
  std::filesystem::create_directories(dir + "/certs");
  std::filesystem::copy_file(api->state_dir() + "/ca.crt", dir + "/certs/ca.crt");
  write_file(dir + "/token", api->admin_token() + "\n");
  write_file(dir + "/config", kubeconfig("    server: " + api->address() +
                                             "\n    certificate-authority: certs/ca.crt\n",
                                         "    tokenFile: token\n"));
  auto c = kubeconfig_config(dir + "/config");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->ca_file, dir + "/certs/ca.crt");
  EXPECT_EQ(c->token_file, dir + "/token");
  EXPECT_EQ(c->namespace_name, "default");
  EXPECT_EQ(get_default_namespace(*c), "200");
}

TEST_F(KubeConfigTest, InsecureSkipTlsVerifyIsRefused) {
  const std::string path = api->tmp() + "/insecure";
  write_file(path,
             kubeconfig("    server: " + api->address() + "\n    insecure-skip-tls-verify: true\n",
                        "    token: " + api->admin_token() + "\n"));
  auto c = kubeconfig_config(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(path + ":7:"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("clusters[c].cluster.insecure-skip-tls-verify"),
            std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("always verifies"), std::string::npos);
  EXPECT_NE(c.error().hint.find("certificate-authority"), std::string::npos);
}

TEST_F(KubeConfigTest, WrongCaFailsTls) {
  // Another CA, made the way the stand-in makes its own.
  const std::string dir = api->tmp() + "/other-ca";
  std::filesystem::create_directories(dir);
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                          "-nodes -keyout " +
                          dir + "/ca.key -out " + dir + "/ca.crt -days 1 -subj /CN=other-ca " +
                          ">/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string path = api->tmp() + "/wrong-ca";
  write_file(path,
             kubeconfig("    server: " + api->address() + "\n    certificate-authority-data: " +
                            base64(read_file(dir + "/ca.crt")) + "\n",
                        "    token: " + api->admin_token() + "\n"));
  auto c = kubeconfig_config(path);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const std::string wrong = get_default_namespace(*c);
  EXPECT_TRUE(wrong.starts_with("error: ")) << wrong;
  EXPECT_NE(wrong.find("certificate"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("hint: check the cluster CA"), std::string::npos) << wrong;

  // No CA at all: the system's store does not know the stand-in's CA either.
  Config none = *c;
  none.ca_pem.clear();
  EXPECT_TRUE(get_default_namespace(none).starts_with("error: "));
  // The right CA as a file: fine.
  Config right = *c;
  right.ca_pem.clear();
  right.ca_file = api->state_dir() + "/ca.crt";
  EXPECT_EQ(get_default_namespace(right), "200");
}

TEST_F(KubeConfigTest, BadKubeconfigs) {
  const std::string path = api->tmp() + "/bad";
  const auto error_of = [&](const std::string& text) {
    write_file(path, text);
    auto c = kubeconfig_config(path);
    return c.ok() ? std::string("ok") : c.error().to_string();
  };
  EXPECT_NE(error_of("clusters: [\n").find(path + ":"), std::string::npos);
  EXPECT_NE(error_of("apiVersion: v1\nkind: Config\n").find("current-context: not set"),
            std::string::npos);
  const std::string missing_user =
      "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
      "contexts:\n- name: x\n  context:\n    cluster: c\n    user: nobody\ncurrent-context: x\n";
  EXPECT_NE(error_of(missing_user).find("users: no entry named \"nobody\""), std::string::npos)
      << error_of(missing_user);
  EXPECT_NE(
      error_of(kubeconfig("    server: https://127.0.0.1:1\n", "    exec:\n      command: aws\n"))
          .find("users[u].user.exec"),
      std::string::npos);
  EXPECT_NE(error_of(kubeconfig("    server: https://127.0.0.1:1\n"
                                "    certificate-authority-data: '%%%'\n",
                                "    token: t\n"))
                .find("not valid base64"),
            std::string::npos);
  EXPECT_NE(error_of(kubeconfig("    server: 127.0.0.1:6443\n", "    token: t\n"))
                .find("is not an http(s) URL"),
            std::string::npos);
  EXPECT_NE(error_of(kubeconfig("    server: https://127.0.0.1:1\n",
                                "    client-certificate: cert.pem\n"))
                .find("without its key"),
            std::string::npos);
  EXPECT_NE(kubeconfig_config(api->tmp() + "/absent").error().message.find("cannot read"),
            std::string::npos);
}

} // namespace
} // namespace corral::kube::test
