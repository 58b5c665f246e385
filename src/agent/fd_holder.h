// Keeping enforcement alive while the agent restarts (issue: "no unenforced window").
//
// A fanotify group lives as long as any process holds its fd, and while nobody reads it the
// kernel keeps the accesses it judges waiting. So the agent hands every group's fd to a
// small holder process (this binary in `fd-holder` mode, detached with setsid) over a unix
// socket (SCM_RIGHTS). When the agent dies, the holder keeps the groups: the containers'
// execs wait instead of running unjudged; the restarted agent takes the fds back and
// answers what queued meanwhile. When no agent returns within the hold time, the holder
// closes the groups, which allows everything they hold (fanotify_release), and exits — a
// dead agent must never freeze a workload for longer than that.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace corral::agent {

// Runs the holder: serves `socket_path` until no agent has been connected for `hold`, or
// until an agent says QUIT, or SIGTERM/SIGINT. Returns the exit code.
int run_fd_holder(const std::string& socket_path, std::chrono::seconds hold);

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
                                                                  std::chrono::seconds hold);

  // The groups a previous agent left with the holder (they stay held until dropped).
  Result<std::vector<HeldFd>> take();
  void put(const std::string& id, const std::string& meta, int fd);
  void drop(const std::string& id);
  // Ends the holder, closing every group it holds: enforcement stops with the agent.
  void quit();

private:
  explicit FdHolderClient(Fd sock) : sock_(std::move(sock)) {}
  bool send(const std::string& msg, int fd = -1);
  Fd sock_;
  std::mutex mu_;
};

} // namespace corral::agent
