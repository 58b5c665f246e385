// One fanotify group: the marks and rules of one workload. A group is immutable once built
// except for the interpreter bookkeeping, which only the event thread touches. New rules
// get a new group (DESIGN.md: building a new group and closing the old one is also how the
// kernel cache is flushed — ignore marks belong to the group that placed them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include <sys/stat.h>

#include "core/fd.h"
#include "core/result.h"
#include "enforce/fanotify/root_fs.h"
#include "policy/decide.h"
#include "policy/ruleset.h"
#include "workload/workload.h"

namespace corral::enforce::fanotify {

using LogFn = std::function<void(const std::string&)>;

// The path an access is judged as when the agent cannot judge it (its path cannot be read,
// the subject is gone, the verdict is late): no rule names it, so decide() gives the
// workload's "could not decide" verdict — deny under an allow-list with posture block,
// allow + alert under posture audit, allow under a block-list (DESIGN.md threat model).
constexpr const char* kUndecidablePath = "/(undecidable)";

// The fanotify events a RuleSet needs: FAN_OPEN_EXEC_PERM for process rules,
// FAN_OPEN_PERM for file rules; 0 when it has neither.
uint64_t event_mask(const policy::RuleSet& rules);

class Group {
public:
  // fanotify_init + a mount mark on every mount of w's mount namespace. Refuses a workload
  // that shares the agent's mount namespace: its mounts are the host's. `mark` false: no
  // marks at all (tests of a layout whose marks miss the workload).
  static Result<std::shared_ptr<Group>> make(const workload::Workload& w,
                                             std::shared_ptr<const policy::RuleSet> rules,
                                             const LogFn& log, bool mark = true);
  // A group built by an earlier agent (kept by the fd holder), with its marks (and cache)
  // still in place, to be read with `rules`.
  static Result<std::shared_ptr<Group>> adopt(Fd fd, const workload::Workload& w,
                                              std::shared_ptr<const policy::RuleSet> rules);

  [[nodiscard]] int fd() const { return fd_.get(); }
  // Releases the fanotify group now, keeping the fd number reserved: the group's file is
  // replaced by /dev/null (dup3), so threads still holding the number get EBADF/EOF
  // instead of writing to a reused descriptor. Releasing it allows every event the kernel
  // holds for it and removes its marks (fanotify_release); that waits for an SRCU grace
  // period (fsnotify_destroy_group: milliseconds), so the caller pays, not the event thread.
  void shut_down();
  [[nodiscard]] bool closed() const { return closed_; }
  [[nodiscard]] uint64_t mask() const { return mask_; }
  [[nodiscard]] const workload::Workload& workload() const { return workload_; }
  [[nodiscard]] const policy::RuleSet& rules() const { return *rules_; }
  [[nodiscard]] const std::shared_ptr<const policy::RuleSet>& rules_ptr() const { return rules_; }
  // The verdict for an access of category `c` that cannot be judged (kUndecidablePath).
  [[nodiscard]] const policy::Verdict& undecidable(policy::Category c) const {
    return c == policy::Category::Process ? undecidable_exec_ : undecidable_file_;
  }
  // Whether an undecidable access of the events this group reads must be denied.
  [[nodiscard]] bool fail_closed() const {
    return !undecidable_exec_.allow || !undecidable_file_.allow;
  }
  // readlink of the workload's /proc/<pid>/root: "/" after pivot_root (see strip_root).
  [[nodiscard]] const std::string& root_prefix() const { return root_prefix_; }
  // The inode of the workload's mount namespace, read when the group was built.
  [[nodiscard]] uint64_t mnt_ns() const { return mnt_ns_; }
  // The workload's cgroup v2 id (the exec backstop's key for it); 0 when it has none that
  // can be listed (see workload_cgroup_id).
  [[nodiscard]] uint64_t cgroup_id() const { return cgroup_id_; }
  // When the workload's init started (CLOCK_REALTIME ns): a file whose ctime is later was
  // created, changed or moved after it (policy::Settings::image_only).
  [[nodiscard]] uint64_t start_ns() const { return start_ns_; }
  // Whether a file with this ctime was created, changed or moved in after the start and the
  // image-only rule applies to it.
  [[nodiscard]] bool new_file(const struct stat& st) const;
  // Whether the file is as the image shipped it (policy::Access::shipped): its ctime is not
  // after the start. False when the start is unknown; independent of the image-only rule.
  [[nodiscard]] bool shipped(const struct stat& st) const;
  // The image-only rule for the path (new_file covers the file itself): a file allowed by an
  // exact rule must be the one that was at that path when the group was built; one allowed
  // under a directory or pattern must not sit in a directory created or moved in below the
  // rule's fixed directory after the start (renaming a directory keeps its files' ctimes).
  [[nodiscard]] bool moved_in(const policy::Verdict& v, const std::string& target,
                              const struct stat& st) const;
  // The rule path naming the file (dev, ino) exactly, for an event whose own path cannot be
  // read (longer than PATH_MAX); nullopt when no exact process rule names it.
  [[nodiscard]] std::optional<std::string> rule_path_of(FileId id) const;
  // The superblock device of the event file's mount, as the kernel keys files
  // (inode->i_sb->s_dev; for overlayfs stat() reports another): from mountinfo, cached.
  [[nodiscard]] std::optional<dev_t> superblock_dev(int event_fd, int tid, dev_t st_dev);
  // Whether mount `id` is one of the workload's when the group was built.
  [[nodiscard]] bool workload_mount(int id) const { return devs_.contains(id); }
  // Another group (new rules) or none now enforces the workload: this one must not add
  // exec backstop entries any more (EventHandler, under its backstop lock).
  void supersede() { superseded_ = true; }
  [[nodiscard]] bool superseded() const { return superseded_; }

  // --- event thread only ---
  // An allowed exec of `interp`'s user by thread `tid`: its interpreter may follow.
  void expect_interpreter(int tid, std::string interp);
  // Takes the interpreter expected for `tid`, if any and not stale.
  std::optional<std::string> take_expected(int tid);
  // Interpreters of binaries whose exec is cached by an ignore mark: their exec produces
  // no event, so only the interpreter's open tells us about it.
  std::set<FileId> cached_interpreters;
  std::atomic<size_t> cached{0};      // ignore marks placed by this group
  std::atomic<uint64_t> approvals{0}; // exec backstop approvals made by this group
  // Built by an earlier agent (fd holder): its ignore marks may cache execs whose
  // interpreters this group never saw named, so interpreter loads are told by the kernel
  // stack alone (an interpreter is only opened after its binary passed this group).
  [[nodiscard]] bool adopted() const { return adopted_; }

private:
  Group() = default;
  // `mountinfo` (may be null) gets the workload's mountinfo as read for the group.
  static Result<std::shared_ptr<Group>> prepare(const workload::Workload& w,
                                                std::shared_ptr<const policy::RuleSet> rules,
                                                const LogFn& log, std::string* mountinfo);
  struct Expectation {
    std::string interp;
    std::chrono::steady_clock::time_point expires;
  };
  Fd fd_;
  Fd placeholder_; // /dev/null, for shut_down
  std::atomic<bool> closed_{false};
  std::atomic<bool> superseded_{false};
  uint64_t mnt_ns_ = 0;
  uint64_t cgroup_id_ = 0;
  uint64_t start_ns_ = 0;
  std::map<FileId, std::string> rule_files_;
  std::map<std::string, FileId, std::less<>> rule_ids_; // the same, by path
  std::mutex devs_mu_;
  std::unordered_map<int, dev_t> devs_; // by mount id
  bool adopted_ = false;
  uint64_t mask_ = 0;
  workload::Workload workload_;
  std::shared_ptr<const policy::RuleSet> rules_;
  policy::Verdict undecidable_exec_, undecidable_file_;
  std::string root_prefix_;
  std::unordered_map<int, Expectation> expected_;
};

} // namespace corral::enforce::fanotify
