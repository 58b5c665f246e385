#include "cli/client.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/fd.h"
#include "policy/parser.h"

namespace corral::cli {
namespace {

constexpr const char* kStartHint =
    "start the agent: sudo systemctl start corrald (deploy/corrald.service), or run "
    "sudo corrald --api-socket PATH; pass --socket PATH or set CORRAL_SOCKET if it listens "
    "elsewhere";

// A refused connect says more than gRPC's "does not answer": the socket is root-only (0600,
// DESIGN.md "Interfaces"), so a user gets EACCES, and a socket left by a dead agent gets
// ECONNREFUSED. Returns 0 when a connection was possible, else connect(2)'s errno.
int try_connect(const std::string& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path) return ENAMETOOLONG;
  socket.copy(addr.sun_path, socket.size());
  const Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return errno;
  return 0;
}

} // namespace

void add_socket_option(CLI::App* cmd, std::string& socket) {
  const char* env = std::getenv("CORRAL_SOCKET");
  socket = env != nullptr && *env != '\0' ? env : kDefaultSocket;
  cmd->add_option("--socket", socket, "The agent's socket (env CORRAL_SOCKET)")
      ->capture_default_str();
}

std::unique_ptr<api::Agent::Stub> connect(const std::string& socket, const char* command) {
  const auto denied = [&] {
    std::cerr << "corral " << command << ": permission denied on " << socket
              << ": the agent's API is root-only (hint: run as root, e.g. sudo corral " << command
              << ")\n";
    return nullptr;
  };
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    if (errno == EACCES) return denied(); // a directory on the way is closed to us
    std::cerr << "corral " << command << ": cannot reach the agent at " << socket << ": "
              << std::strerror(errno) << " (hint: " << kStartHint << ")\n";
    return nullptr;
  }
  if (const int e = try_connect(socket); e == EACCES || e == EPERM) {
    return denied();
  } else if (e == ECONNREFUSED) {
    std::cerr << "corral " << command << ": no agent listens on " << socket
              << " (a socket left by an agent that stopped) (hint: " << kStartHint << ")\n";
    return nullptr;
  }
  // Replies (e.g. the warnings of a large apply) may pass gRPC's default of 4 MiB.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(policy::kMaxApplyBytes));
  auto channel =
      grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3))) {
    std::cerr << "corral " << command << ": the agent at " << socket
              << " does not answer (hint: " << kStartHint << ")\n";
    return nullptr;
  }
  return api::Agent::NewStub(channel);
}

std::unique_ptr<grpc::ClientContext> unary_context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

int report(const grpc::Status& status, const char* command, const std::string& socket) {
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    std::cerr << "corral " << command << ": the agent at " << socket
              << " refused the request's size: " << status.error_message()
              << " (hint: send fewer policy files at once)\n";
    return 1;
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << "corral " << command << ": lost the agent at " << socket << ": "
              << status.error_message() << " (hint: " << kStartHint << ")\n";
    return 1;
  }
  std::cerr << "corral " << command << ": " << status.error_message();
  if (!status.error_details().empty()) std::cerr << " (hint: " << status.error_details() << ")";
  std::cerr << "\n";
  return 1;
}

int report_failed(const google::protobuf::RepeatedPtrField<std::string>& failed,
                  const char* command) {
  if (failed.empty()) return 0;
  std::cerr << "corral " << command << ": the change is NOT in force on " << failed.size()
            << (failed.size() == 1 ? " workload" : " workloads")
            << "; each keeps its previous rules whole (or stays NOT ENFORCED if it had none) "
               "and the agent retries it:\n";
  for (const auto& f : failed) std::cerr << "  " << f << "\n";
  std::cerr << "(hint: `corral get workloads -o wide` shows the rules in force; the agent's log "
               "names the limit that was hit, see corrald --max-workloads)\n";
  return 1;
}

std::string who(const char* command) {
  const uid_t uid = ::getuid();
  const passwd* pw = ::getpwuid(uid);
  return "uid " + std::to_string(uid) +
         (pw != nullptr ? " (user " + std::string(pw->pw_name) + ")" : "") + " (corral " + command +
         ")";
}

} // namespace corral::cli
