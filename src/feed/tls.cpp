#include "feed/tls.h"

#include <fstream>
#include <sstream>

namespace corral::feed {
namespace {

Result<std::string> read_pem(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return errno_error(flag + " " + path + ": cannot read", "a PEM file readable by root");
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().find("-----BEGIN ") == std::string::npos)
    return Error{flag + " " + path + ": not a PEM file", "give the PEM (-----BEGIN ...) file", 0};
  return s.str();
}

// The three files, read; a cert without its key (or the reverse) is an error.
Result<void> read_all(const TlsFiles& f, const std::string& prefix, std::string* ca,
                      std::string* cert, std::string* key) {
  if (f.cert.empty() != f.key.empty())
    return Error{prefix + "-cert and " + prefix + "-key go together", "give both, or neither", 0};
  const std::pair<const std::string*, std::string*> files[] = {
      {&f.ca, ca}, {&f.cert, cert}, {&f.key, key}};
  const char* names[] = {"-ca", "-cert", "-key"};
  for (int i = 0; i < 3; ++i) {
    if (files[i].first->empty()) continue;
    auto pem = read_pem(*files[i].first, prefix + names[i]);
    if (!pem) return pem.error();
    *files[i].second = std::move(*pem);
  }
  return {};
}

} // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& f,
                                                                    const std::string& prefix) {
  if (!f.any()) return grpc::InsecureServerCredentials();
  if (f.cert.empty())
    return Error{prefix + "-ca needs " + prefix + "-cert and " + prefix + "-key",
                 "a server certificate and its key turn TLS on; the CA then asks for clients'", 0};
  std::string ca, cert, key;
  if (auto r = read_all(f, prefix, &ca, &cert, &key); !r) return r.error();
  grpc::SslServerCredentialsOptions o(
      ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = ca;
  o.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(o);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials(const TlsFiles& f,
                                                                      const std::string& prefix) {
  if (!f.any()) return grpc::InsecureChannelCredentials();
  std::string ca, cert, key;
  if (auto r = read_all(f, prefix, &ca, &cert, &key); !r) return r.error();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca; // empty: the system's CAs
  o.pem_private_key = key;
  o.pem_cert_chain = cert;
  return grpc::SslCredentials(o);
}

} // namespace corral::feed
