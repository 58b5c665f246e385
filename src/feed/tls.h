// TLS for the event API's servers and clients: PEM files named by flags, read once at start
// with clear errors. A server with a client CA requires and verifies client certificates
// (mTLS): a client without one is refused during the handshake.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/result.h"

namespace corral::feed {

struct TlsFiles {
  std::string ca;   // server: the CA client certificates must chain to; client: the server's
  std::string cert; // this side's certificate chain (PEM)
  std::string key;  // its private key (PEM)
  [[nodiscard]] bool any() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

// `prefix` names the flags in errors, e.g. "--grpc-tls" for --grpc-tls-cert/-key/-ca.
Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& f,
                                                                    const std::string& prefix);
Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials(const TlsFiles& f,
                                                                      const std::string& prefix);

} // namespace corral::feed
