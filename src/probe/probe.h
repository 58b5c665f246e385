// What this node's kernel lets Corral do, found by trying (issue 9, `corral probe`): every
// mechanism is exercised for real on objects the probe creates itself (a scratch directory,
// a scratch cgroup, programs that allow everything) and removed again, rather than read from
// config files. Usable by the CLI and, later, by the agent's `--enforcer auto`.
#pragma once

#include <string>
#include <vector>

namespace corral::probe {

// The outcome of one try.
struct Check {
  enum class Result {
    Works,     // tried and it worked
    Fails,     // tried and the kernel refused (err, stage and message say how)
    NeedsRoot, // not tried: the caller lacks the privileges it needs
    NotTried   // not tried: a prerequisite is missing (message says which)
  };
  std::string id{};    // stable key, e.g. "bpf_lsm"
  std::string title{}; // e.g. "BPF LSM program"
  Result result = Result::NotTried;
  std::string what{};    // what was tried, e.g. "load lsm/file_open (attach to bpf_lsm_file_open)"
  std::string stage{};   // where it failed: "load", "attach", ...; empty when it worked
  int err = 0;           // errno of the failure; 0 when it worked
  std::string message{}; // the outcome in words
};
std::string to_string(Check::Result r); // "works", "fails", "needs root", "not tried"
// "EPERM" for EPERM; "E<n>" for a number glibc has no name for.
std::string errno_name(int err);

// Where the active LSM list came from and what it says.
struct LsmList {
  std::vector<std::string> active{}; // in the kernel's order; empty when unknown
  std::string source{};              // how it was read
  std::string error{};               // why it could not be read; empty when it was
};

struct Kernel {
  std::string release{};      // uname -r
  std::string version{};      // uname -v
  std::string machine{};      // uname -m
  std::string btf{};          // path of the kernel's BTF, empty when absent
  std::string cgroup2{};      // mount point of the cgroup v2 hierarchy, empty when none
  bool cgroup_hybrid = false; // cgroup v1 controllers are mounted as well
  LsmList lsm;
};

struct RuntimeSocket {
  std::string runtime{}; // containerd, CRI-O, docker, cri-dockerd
  std::string path{};
  bool given = false;     // named by the caller (--containerd-socket), not a default path
  bool found = false;     // a unix socket exists there
  bool reachable = false; // connect(2) succeeded
  std::string error{};    // why not found or not reachable
};

// What `--enforcer auto` picks for one category of rules, and how well it covers it.
struct Pick {
  std::string category{}; // process, file, network, capabilities
  std::string enforcer{}; // e.g. "fanotify", "cgroup-bpf", "none"
  std::string coverage{}; // "enforced", "audited only", "unsupported" (enforce::Coverage)
  std::string reason{};   // which check decided it
};

struct Options {
  bool full = false;               // also the monitor's mechanisms (ring buffer, tp_btf)
  std::string containerd_socket{}; // an extra containerd socket to look for
};

struct Report {
  bool root = false; // ran with the privileges of root (CAP_SYS_ADMIN)
  Kernel kernel;
  std::vector<Check> checks{};
  std::vector<RuntimeSocket> sockets{};
  std::vector<Pick> picks{};
  std::vector<std::string> notes{}; // conclusions worth a line, e.g. "bpf is listed but ..."
  [[nodiscard]] const Check* check(const std::string& id) const;
};

// The pieces, each usable alone.
Kernel read_kernel();
LsmList read_lsm_list();
std::string find_cgroup2(bool* hybrid);
Check try_bpf();
Check try_fanotify();
Check try_cgroup_bpf(const std::string& cgroup2);
Check try_bpf_lsm();
Check try_fmod_ret();
Check try_tp_btf_cap();
Check try_kprobe();
Check try_tp_btf();
Check try_ringbuf();
std::vector<RuntimeSocket> find_runtime_sockets(const std::string& containerd_socket);
// Pure: the picks and notes that follow from the checks (and the LSM list).
void decide(Report& r);

// Runs every try (as root) or marks those needing root (otherwise), then decide().
Report run(const Options& o);

} // namespace corral::probe
