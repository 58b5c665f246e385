// The owner of the network enforcer's BPF objects (bpf/cgroupnet.bpf.c): the only user of
// libbpf in enforce/cgroupnet. It loads the programs, or takes over those a previous agent
// left attached (adopt), keeps the maps, attaches the socket program to cgroups and reads
// the alert reports.
//
// Restart survival: the socket program is attached with the legacy BPF_PROG_ATTACH and
// BPF_F_ALLOW_MULTI, which holds the program (and its maps) in the cgroup for as long as the
// cgroup lives, agent or no agent. A restarted agent opens that program by its id (kept in
// the state dir), checks its name and type, takes its maps and loads the tracepoints on
// them: the workloads stay enforced throughout, by the same program, attached once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

struct ring_buffer; // libbpf's
struct cgroupnet;   // the skeleton

namespace corral::enforce::cgroupnet {

// One socket the kernel alerted on (bpf/shared/cgroupnet.h corral_net_event).
struct SocketEvent {
  uint64_t cgroup = 0;
  uint32_t gen = 0;
  uint16_t names = 0, source = 0;
  uint32_t tgid = 0, tid = 0;
  int family = 0, type = 0, protocol = 0;
  bool allowed = false;
};

struct ExeKey {
  uint64_t dev = 0; // kernel encoding
  uint64_t ino = 0;
  auto operator<=>(const ExeKey&) const = default;
};

class NetPrograms {
public:
  using EventFn = std::function<void(const SocketEvent&)>;
  static constexpr const char* kProgramName = "corral_sock";

  // The tracepoint links (exec, fork, exit) by id, as the fd holder keeps them: while no
  // agent runs they keep each process's fromSource program up to date.
  static constexpr const char* kLinkPrefix = "cgroupnet/";
  using Links = std::vector<std::pair<std::string, Fd>>;

  // Loads the programs; with `adopt_id` != 0, first tries to take over the socket program
  // of that id and its maps (a previous agent's), and then the tracepoint links in `kept`
  // (from the fd holder) when they are all there. `why_not` tells why it could not adopt.
  static Result<std::unique_ptr<NetPrograms>> make(uint32_t adopt_id, std::string* why_not,
                                                   Links kept = {});
  // The tracepoint links to hand to the fd holder (id, fd).
  [[nodiscard]] std::vector<std::pair<std::string, int>> links() const;
  [[nodiscard]] bool kept_links() const { return !links_.empty(); }
  ~NetPrograms(); // stops reading; attachments stay (detach() ends them)
  NetPrograms(const NetPrograms&) = delete;
  NetPrograms& operator=(const NetPrograms&) = delete;

  [[nodiscard]] bool adopted() const { return adopted_; }
  [[nodiscard]] uint32_t program_id() const { return prog_id_; }
  Result<void> read_events(EventFn fn); // starts the reader thread

  // Attaches the socket program to the cgroup directory unless it already is (a previous
  // agent's attachment of the same program counts); removes other instances of it found
  // there (left by an agent whose objects could not be taken over).
  Result<void> attach(const std::string& cgroup_dir);
  Result<void> detach(const std::string& cgroup_dir);
  // Proves the program can be attached here: to a scratch cgroup, then removed.
  Result<void> probe_attach(const std::string& cgroup_parent);

  Result<void> set_workload(uint64_t cgroup, uint32_t gen, bool missing_allow);
  [[nodiscard]] std::optional<uint32_t> workload_gen(uint64_t cgroup) const;
  void erase_workload(uint64_t cgroup);
  [[nodiscard]] std::vector<uint64_t> workload_cgroups() const;
  Result<void> set_verdict(uint64_t cgroup, uint32_t gen, uint16_t names, uint16_t source,
                           bool allow, bool alert);
  void erase_verdict(uint64_t cgroup, uint32_t gen, uint16_t names, uint16_t source);
  Result<void> set_exe(const ExeKey& k, uint16_t id);
  void erase_exe(const ExeKey& k);
  [[nodiscard]] std::vector<std::pair<ExeKey, uint16_t>> exes() const;
  Result<void> set_task(uint32_t tgid, uint16_t id);
  void erase_task(uint32_t tgid);
  [[nodiscard]] uint64_t dropped() const;

private:
  NetPrograms() = default;
  void read_loop();
  std::unique_ptr<::cgroupnet, void (*)(::cgroupnet*)> skel_{nullptr, nullptr};
  Fd adopted_prog_;
  int prog_fd_ = -1; // the socket program attached everywhere: adopted or our own
  uint32_t prog_id_ = 0;
  bool adopted_ = false;
  int workloads_ = -1, verdicts_ = -1, exes_ = -1, tasks_ = -1, events_ = -1, counters_ = -1;
  std::vector<Fd> kept_maps_;
  Links links_; // kept from a previous agent; else the skeleton's own links
  EventFn on_event_;
  std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> ring_{nullptr, nullptr};
  std::atomic<bool> stop_{false};
  std::thread reader_;
};

} // namespace corral::enforce::cgroupnet
