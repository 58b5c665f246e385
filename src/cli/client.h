// Talking to corrald over its unix socket: one connection helper and one way to report
// failures, so every command says the same thing when the agent is not there.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "corral.grpc.pb.h"

namespace corral::cli {

constexpr const char* kDefaultSocket = "/run/corral/corral.sock";

// Adds --socket (default: $CORRAL_SOCKET, else /run/corral/corral.sock).
void add_socket_option(CLI::App* cmd, std::string& socket);

// A stub connected to the agent, or nullptr after printing why it is unreachable and how to
// start it.
std::unique_ptr<api::Agent::Stub> connect(const std::string& socket, const char* command);

// A change's source for the agent's PolicyChange alert and change log:
// "uid 0 (user root) (corral apply)".
std::string who(const char* command);

// A context with a deadline for unary calls.
std::unique_ptr<grpc::ClientContext> unary_context();

// Prints a failed call as "corral CMD: message (hint: ...)" and returns the exit code 1.
int report(const grpc::Status& status, const char* command, const std::string& socket);

// Prints the workloads a change could not reach (a reply's `failed`) as an error and returns
// the exit code: 0 when there are none, else 1.
int report_failed(const google::protobuf::RepeatedPtrField<std::string>& failed,
                  const char* command);

} // namespace corral::cli
