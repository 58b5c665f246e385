// corral verify: the agent checks its change log's hash chain and its stored policies and
// namespace annotations against it (agent/history.h); exit 1 naming the first bad entry.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"

namespace corral::cli {
namespace {

struct Options {
  std::string socket;
  bool accept = false;
};

int run(const Options& o) {
  auto stub = connect(o.socket, "verify");
  if (!stub) return 1;
  api::VerifyRequest req;
  req.set_accept(o.accept);
  req.set_who(who("verify --accept"));
  api::VerifyReply reply;
  const auto s = stub->Verify(unary_context().get(), req, &reply);
  if (!s.ok()) return report(s, "verify", o.socket);
  if (o.accept)
    std::cout << "accepted the stored state as found: " << reply.accepted()
              << " entries appended (severity-10 alert)\n";
  if (reply.problems().empty()) {
    std::cout << "change log intact: " << reply.entries() << " entries, " << reply.files()
              << " stored files match it\n";
    return 0;
  }
  std::cerr << "corral verify: the change log or the stored state was altered behind the "
               "agent's back; first bad: "
            << reply.problems(0) << "\n";
  for (int i = 1; i < reply.problems_size(); ++i)
    std::cerr << "  also: " << reply.problems(i) << "\n";
  std::cerr << "(hint: `corral get history` lists the recorded changes; compare the stored "
               "policies with `corral get policies -o yaml` and re-apply what is wrong)\n";
  return 1;
}

} // namespace

void add_verify(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "verify", "Check that the agent's change log and stored policies were not altered: the "
                "hash chain of every change, and each stored file against its last entry");
  cmd->add_flag("--accept", o->accept,
                "First record every stored file that does not match the log, as found (an "
                "upgrade from before the log, or an alteration you have reviewed): severity-10 "
                "entries and alert by you. A broken chain stays broken: move history.jsonl aside "
                "and --accept to start a new one");
  add_socket_option(cmd, o->socket);
  cmd->footer("Exit status: 0 intact, 1 altered (the first bad entry or file is named) or the "
              "agent is unreachable.");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

} // namespace corral::cli
