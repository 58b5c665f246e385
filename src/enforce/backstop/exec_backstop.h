// The exec backstop (DESIGN.md "Enforcement backends"): a tp_btf/sched_process_exec BPF
// program (bpf/sched_process_exec.bpf.c) that kills, before its first instruction, an exec
// whose image is a file listed for the task's mount namespace, and reports it.
//
// Why: a dynamic binary's exec raises two fanotify exec events, the binary's and its ELF
// interpreter's (ld.so). ld.so cannot be cached with an ignore mark on its own, because a
// direct `ld.so /any/program` would then pass unseen (ld.so maps the program with plain
// opens). With ld.so listed here, the fanotify backend can cache it: it keeps passing as
// an interpreter (never the exec's own file) and a direct exec of it ends here.
//
// It also gives each enforced workload (mount namespace) a verdict for execs of files on the
// kernel's internal mounts — memfd_create + execveat, which no fanotify mount mark sees.
//
// The program and its maps live as long as any process holds the link's fd, so the fd
// holder keeps them with the fanotify groups whose cache depends on them, and a restarted
// agent takes them over (adopt). This class owns the only copies of the libbpf types.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "core/fd.h"
#include "core/result.h"

struct ring_buffer; // libbpf's

namespace corral::enforce {

class ExecBackstop {
public:
  enum class Action : uint32_t { None = 0, Audit = 1, Block = 2 };
  enum class Kind : uint32_t { Guarded = 0, Unmarked = 1, Unapproved = 2, Changed = 3, Mapped = 4 };
  struct Key {
    uint64_t mnt_ns = 0; // inode of the mount namespace
    uint64_t dev = 0;    // the superblock's s_dev in the kernel's encoding (kernel_dev)
    uint64_t ino = 0;
  };
  struct Entry {
    Key key;
    Action action = Action::Block;
    std::string path; // inside the workload: what alerts name
  };
  // One exec of a listed file, or of a file on an internal mount (already killed when
  // action is Block).
  struct Hit {
    Key key;
    Action action = Action::Block;
    Kind kind = Kind::Guarded; // Unmarked: on an internal mount, path is its name ("memfd:x")
    uint64_t cgroup = 0;       // the workload's cgroup (Unapproved, Changed, Mapped)
    uint32_t host_pid = 0, host_ppid = 0, pid = 0, ppid = 0, uid = 0;
    std::string path;
    std::vector<std::string> args; // the new image's argv (truncated at 255 bytes)
  };
  struct Counters {
    uint64_t kills = 0, audits = 0, dropped = 0, kill_failures = 0;
    bool reader_failed = false; // the ring buffer could not be read: no more reports
  };
  using HitFn = std::function<void(const Hit&)>;
  // What the backstop does for a workload (by cgroup v2 id) with an exec the permission
  // path did not approve, and with an executable mapping of a file created or changed after
  // `start_ns` (CLOCK_REALTIME) that it did not approve either.
  struct WorkloadRule {
    Action unapproved = Action::None;
    Action mapped = Action::None;
    uint64_t start_ns = 0;
  };
  enum Approval : uint32_t { kExec = 1, kInterp = 2 };
  // A file the permission path allowed, as it was then: dev (kernel encoding), ino, ctime.
  struct FileState {
    uint64_t dev = 0, ino = 0;
    int64_t ctime_sec = 0;
    uint32_t ctime_nsec = 0;
  };

  // Loads and attaches the program. Fails (with the reason) where this kernel cannot run it.
  static Result<std::unique_ptr<ExecBackstop>> make(HitFn on_hit);
  // Takes over the maps of the program a previous agent attached (found from its link fd):
  // the programs are attached anew on those maps, so every entry stays.
  static Result<std::unique_ptr<ExecBackstop>> adopt(Fd link, HitFn on_hit);
  // The links to hand to the fd holder (id suffix, fd): "" is the exec program's.
  [[nodiscard]] std::vector<std::pair<std::string, int>> links() const;
  static std::vector<std::string> link_suffixes();
  // Why executable mappings are not judged (their programs could not load); "" when they are.
  [[nodiscard]] const std::string& mapping_error() const { return mapping_error_; }
  ~ExecBackstop(); // stops reporting; the program stays while another process holds the link
  ExecBackstop(const ExecBackstop&) = delete;
  ExecBackstop& operator=(const ExecBackstop&) = delete;

  [[nodiscard]] int link_fd() const { return link_.get(); }
  Result<void> set(const Entry& e);
  void erase(const Key& k);
  [[nodiscard]] std::vector<Entry> entries() const;
  // Erases the entries of one mount namespace (without reading the whole map).
  void erase_namespace(uint64_t mnt_ns);
  // The verdict for execs of files on internal mounts in mount namespace `mnt_ns`.
  Result<void> set_unmarked(uint64_t mnt_ns, Action action);
  void erase_unmarked(uint64_t mnt_ns);
  [[nodiscard]] std::vector<uint64_t> unmarked_namespaces() const;
  [[nodiscard]] Counters counters() const;

  Result<void> set_workload(uint64_t cgroup, const WorkloadRule& rule);
  void erase_workload(uint64_t cgroup); // and its approvals
  [[nodiscard]] std::vector<uint64_t> workload_cgroups() const;
  // Adds `kinds` (Approval bits) to the file's approval for the workload; fails (and the
  // caller must then deny) when the map is full. True when it made a new entry.
  Result<bool> approve(uint64_t cgroup, const FileState& f, uint32_t kinds);
  // The same on the approvals map of the backstop whose exec link is `link_fd`, without
  // taking it over (the fd holder, answering while no agent runs).
  static Result<Fd> approvals_of(int link_fd);
  static Result<bool> approve_in(int approvals, uint64_t cgroup, const FileState& f,
                                 uint32_t kinds);
  void erase_approvals(uint64_t cgroup);

private:
  ExecBackstop() = default;
  static Result<std::unique_ptr<ExecBackstop>>
  load(const std::vector<std::pair<std::string, int>>& reuse);
  static Result<std::unique_ptr<ExecBackstop>>
  load(const std::vector<std::pair<std::string, int>>& reuse, bool mappings);
  Result<void> start(HitFn on_hit);
  void read_loop();

  void update_mapped_since();

  Fd link_;
  std::array<Fd, 2> fault_links_; // mm_filemap_fault, mm_filemap_map_pages
  Fd mapped_since_;
  std::string mapping_error_;
  Fd files_, namespaces_, workloads_, approved_, events_, counters_;
  // What the maps hold, indexed so that building a group reads no whole map (a scan of the
  // 65,536 buckets of `approved_` per group cost a node of hundreds of workloads most of an
  // apply): the approvals by workload cgroup, the `files_` keys by mount namespace, and the
  // start times of the workloads whose mappings are judged (for `mapped_since_`). Kept by
  // set/erase/approve/set_workload; filled from kept maps once when they are taken over (the
  // fd holder approves only while no agent runs).
  std::mutex index_mu_;
  std::unordered_map<uint64_t, std::set<std::pair<uint64_t, uint64_t>>> approval_index_;
  std::unordered_map<uint64_t, std::set<std::pair<uint64_t, uint64_t>>> files_index_;
  std::map<uint64_t, uint64_t> mapped_starts_;
  void index_kept_maps();
  HitFn on_hit_;
  std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> ring_{nullptr, nullptr};
  std::atomic<bool> stop_{false};
  std::atomic<bool> reader_failed_{false};
  std::thread reader_;
};

// st_dev (glibc's encoding) -> the kernel's dev_t encoding (major << 20 | minor), as
// inode->i_sb->s_dev holds it.
uint64_t kernel_dev(dev_t dev);

} // namespace corral::enforce
