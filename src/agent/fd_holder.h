// Keeping enforcement alive while the agent restarts (issue: "no unenforced window"), and
// failing closed while it is away (issue 7, "agent crash").
//
// A fanotify group lives as long as any process holds its fd, and while nobody reads it the
// kernel keeps the accesses it judges waiting. So the agent hands every group's fd to a
// small holder process (this binary in `fd-holder` mode, detached with setsid) over a unix
// socket (SCM_RIGHTS). When the agent dies, the holder keeps the groups: the containers'
// execs wait instead of running unjudged; the restarted agent takes the fds back and
// answers what queued meanwhile (and what the dead agent had read but not answered:
// enforce/fanotify/journal.h).
//
// When no agent returns within the hold time, the holder does not let go of the groups
// (closing them would ALLOW everything they hold, fanotify_release): it reads them itself
// and judges every event with decide() on its path, with the rules the agent last left for
// the group (agent/held_rules.h), for as long as no agent is back — first the events the
// dead agent left pending (enforce/fanotify/journal.h). Where it has no rules (none left,
// the workload's process is gone) or the rules need what only the agent reads (fromSource,
// ownerOnly, readOnly), it answers with the group's undecidable verdict, which the agent put
// in the group's meta ("undecidable=" exec, file; Group::undecidable): deny under an
// allow-list with posture block, allow under audit and block-lists. It neither caches nor
// alerts (the next agent reads the backstop's reports; the holder's own verdicts are only
// logged as a count). The next agent takes the groups back as usual. An agent that stops on
// purpose (SIGTERM) says QUIT: the holder exits and enforcement ends with the agent.
//
// The agent watches its connection to the holder (FdHolderClient::watch): when the holder
// dies, it starts a new one and hands it every group again.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "core/fd.h"
#include "core/result.h"

namespace corral::agent {

// Runs the holder: serves `socket_path` until an agent says QUIT, or SIGTERM/SIGINT (or
// `hold` passes without an agent while it holds no group). `journal`: the agent's event
// journal (may be empty). Returns the exit code.
int run_fd_holder(const std::string& socket_path, std::chrono::seconds hold,
                  const std::string& journal);

// Where the agent leaves each group's rules for the holder (agent/held_rules.h): next to
// the holder's socket.
std::string held_rules_dir(const std::string& socket_path);

struct HeldFd {
  std::string id;   // workload id
  std::string meta; // what the group was built for (pid, rules fingerprint)
  Fd fd;
};

class FdHolderClient {
public:
  // Connects to the holder on `socket_path`, first starting one (`self_exe fd-holder ...`)
  // when none answers.
  static Result<std::unique_ptr<FdHolderClient>> connect_or_spawn(const std::string& socket_path,
                                                                  std::chrono::seconds hold,
                                                                  const std::string& journal);
  ~FdHolderClient(); // stops the watcher
  FdHolderClient(const FdHolderClient&) = delete;
  FdHolderClient& operator=(const FdHolderClient&) = delete;

  // Watches the holder: when it dies (its end of the socket hangs up), starts a new one
  // and calls `rehand`, which must put() every group again.
  void watch(std::function<void()> rehand, std::function<void(const std::string&)> log);
  // Ends the watcher (before whatever `rehand` refers to goes).
  void stop_watching();

  // The groups a previous agent left with the holder (they stay held until dropped).
  Result<std::vector<HeldFd>> take();
  void put(const std::string& id, const std::string& meta, int fd);
  void drop(const std::string& id);
  // Ends the holder, closing every group it holds: enforcement stops with the agent.
  void quit();

private:
  FdHolderClient(Fd sock, pid_t child, std::string socket_path, std::chrono::seconds hold,
                 std::string journal);
  static Result<std::pair<Fd, pid_t>> connect_spawning(const std::string& socket_path,
                                                       std::chrono::seconds hold,
                                                       const std::string& journal);
  bool send(const std::string& msg, int fd = -1);
  void watch_loop(const std::function<void()>& rehand,
                  const std::function<void(const std::string&)>& log);
  Fd sock_;
  pid_t child_; // the holder this agent started (reaped when it dies); -1: none
  const std::string socket_path_, journal_;
  const std::chrono::seconds hold_;
  std::mutex mu_;
  Fd stop_; // eventfd: ends the watcher
  std::atomic<bool> quitting_{false};
  std::thread watcher_;
};

} // namespace corral::agent
