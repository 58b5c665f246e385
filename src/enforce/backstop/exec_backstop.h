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

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "core/fd.h"
#include "core/result.h"

struct ring_buffer; // libbpf's

namespace corral::enforce {

class ExecBackstop {
public:
  enum class Action : uint32_t { Audit = 1, Block = 2 };
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
    bool unmarked = false; // on an internal mount; path is then its name ("memfd:x")
    uint32_t host_pid = 0, host_ppid = 0, pid = 0, ppid = 0, uid = 0;
    std::string path;
    std::vector<std::string> args; // the new image's argv (truncated at 255 bytes)
  };
  struct Counters {
    uint64_t kills = 0, audits = 0, dropped = 0, kill_failures = 0;
    bool reader_failed = false; // the ring buffer could not be read: no more reports
  };
  using HitFn = std::function<void(const Hit&)>;

  // Loads and attaches the program. Fails (with the reason) where this kernel cannot run it.
  static Result<std::unique_ptr<ExecBackstop>> make(HitFn on_hit);
  // Takes over the program a previous agent attached, from its link fd; its entries stay.
  static Result<std::unique_ptr<ExecBackstop>> adopt(Fd link, HitFn on_hit);
  ~ExecBackstop(); // stops reporting; the program stays while another process holds the link
  ExecBackstop(const ExecBackstop&) = delete;
  ExecBackstop& operator=(const ExecBackstop&) = delete;

  [[nodiscard]] int link_fd() const { return link_.get(); }
  Result<void> set(const Entry& e);
  void erase(const Key& k);
  [[nodiscard]] std::vector<Entry> entries() const;
  // The verdict for execs of files on internal mounts in mount namespace `mnt_ns`.
  Result<void> set_unmarked(uint64_t mnt_ns, Action action);
  void erase_unmarked(uint64_t mnt_ns);
  [[nodiscard]] std::vector<uint64_t> unmarked_namespaces() const;
  [[nodiscard]] Counters counters() const;

private:
  ExecBackstop() = default;
  Result<void> start(HitFn on_hit);
  void read_loop();

  Fd link_, files_, namespaces_, events_, counters_;
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
