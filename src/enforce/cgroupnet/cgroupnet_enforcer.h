// The network enforcer (issue 9, DESIGN.md "cgroup-net"): protocol rules enforced by a
// cgroup/sock_create BPF program on each workload's cgroup v2 (bpf/cgroupnet.bpf.c). The
// verdict of every socket kind a workload can create, for each of its fromSource programs,
// is computed in user space with decide() (policy/network.h) and written to a table the
// program reads; a change writes a new generation of the table and flips to it at once.
//
// Survives agent restarts: the program stays attached to the cgroups while the agent is
// away (net_programs.h); the next agent takes it over by the id kept in
// <state dir>/cgroupnet.state, with the cgroups it was attached to, and releases those
// whose workload no longer has network rules once the workloads are known.
// A stop on purpose (the enforcer's destruction) detaches everything, as the fanotify
// groups end with the agent.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "enforce/cgroupnet/net_programs.h"
#include "enforce/enforcer.h"

namespace corral::enforce {

class CgroupNetEnforcer final : public Enforcer {
public:
  struct Options {
    AlertSink sink;
    std::function<void(const std::string&)> log;
    std::string state_dir; // where cgroupnet.state is kept
    // The fd holder (agent/fd_holder.h): the tracepoint links a previous agent left with it,
    // and where to hand ours (ids start with NetPrograms::kLinkPrefix).
    cgroupnet::NetPrograms::Links kept_links;
    std::function<void(const std::string& id, int fd)> on_link;
  };
  // Never null: where the programs cannot load or attach, the enforcer says why through
  // coverage(Network) and enforces nothing.
  static std::unique_ptr<CgroupNetEnforcer> make(Options o);
  ~CgroupNetEnforcer() override;
  CgroupNetEnforcer(const CgroupNetEnforcer&) = delete;
  CgroupNetEnforcer& operator=(const CgroupNetEnforcer&) = delete;

  [[nodiscard]] std::string_view name() const override { return "cgroup-bpf"; }
  Result<void> enforce(const workload::Workload& w,
                       std::shared_ptr<const policy::RuleSet> rules) override;
  void release(const std::string& id) override;
  [[nodiscard]] Counters counters() const override;
  [[nodiscard]] Coverage coverage(policy::Category c) const override;
  [[nodiscard]] bool available() const { return programs_ != nullptr; }
  [[nodiscard]] const std::string& error() const { return error_; }
  // After the first sync of workloads: detaches from the cgroups a previous agent left
  // attached that no workload claimed since. Returns how many.
  size_t release_unclaimed();
  // Hands the tracepoint links to a new fd holder (the previous one died).
  void rehand();

private:
  struct Table {
    uint32_t gen = 0;
    std::shared_ptr<const policy::RuleSet> rules;
    std::map<uint16_t, std::string> sources; // program id -> a fromSource path naming it
  };
  struct State {
    workload::Workload w;
    std::string dir, root_prefix;
    uint64_t cgroup = 0;
    Table cur;
    std::optional<Table> prev; // for alerts of sockets judged just before a change
    std::set<cgroupnet::ExeKey> exes;
  };
  explicit CgroupNetEnforcer(Options o) : o_(std::move(o)) {}
  Result<void> enforce_locked(const workload::Workload& w,
                              std::shared_ptr<const policy::RuleSet> rules, uint64_t* cgroup);
  Result<void> write_table(State& s, const Table& t);
  Result<std::map<uint16_t, std::string>> claim_sources(State& s, const policy::RuleSet& rs);
  void unclaim_exes(const std::set<cgroupnet::ExeKey>& exes);
  void seed_tasks(const State& s);
  void drop_gen(uint64_t cgroup, uint32_t keep);
  void on_event(const cgroupnet::SocketEvent& e);
  std::optional<events::Alert> alert_for(const cgroupnet::SocketEvent& e);
  void publish_pending(uint64_t cgroup);
  void save_state();
  void load_state(uint32_t* prog_id);

  Options o_;
  std::unique_ptr<cgroupnet::NetPrograms> programs_;
  std::string error_;
  mutable std::mutex mu_;
  std::map<std::string, State> by_id_;
  std::map<uint64_t, std::string> id_of_cgroup_;
  std::map<cgroupnet::ExeKey, std::pair<uint16_t, int>> exe_ids_; // id, workloads using it
  std::map<uint64_t, std::string> kept_;                          // cgroup -> dir, from state
  uint64_t events_ = 0, denied_ = 0;
  static constexpr size_t kMaxPending = 4096;
  std::vector<cgroupnet::SocketEvent> pending_; // of kept cgroups not enforced again yet
};

} // namespace corral::enforce
