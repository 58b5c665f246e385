#include "enforce/fanotify/group.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"

namespace corral::enforce::fanotify {
namespace {

// The kernel opens the interpreter right after it accepted the exec's file (same execve
// call), so an expectation older than this belongs to an exec that failed in between.
constexpr auto kExpectationLifetime = std::chrono::seconds(2);
constexpr size_t kMaxExpectations = 4096;

std::optional<ino_t> mount_namespace(const std::string& pid) {
  struct stat st {};
  if (::stat(("/proc/" + pid + "/ns/mnt").c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

} // namespace

uint64_t event_mask(const policy::RuleSet& rules) {
  uint64_t mask = 0;
  if (rules.traits(policy::Category::Process).rules > 0) mask |= FAN_OPEN_EXEC_PERM;
  if (rules.traits(policy::Category::File).rules > 0) mask |= FAN_OPEN_PERM;
  return mask;
}

Result<std::shared_ptr<Group>> Group::prepare(const workload::Workload& w,
                                              std::shared_ptr<const policy::RuleSet> rules) {
  if (w.init_pid <= 0) return Error{"workload " + w.id + " has no running process", "", 0};
  const std::string pid = std::to_string(w.init_pid);
  const auto ours = mount_namespace("self");
  const auto theirs = mount_namespace(pid);
  if (!ours || !theirs) return errno_error("read the mount namespace of pid " + pid);
  if (*ours == *theirs) {
    return Error{"refusing to enforce on " + w.id + " with fanotify: it shares the agent's " +
                     "mount namespace, so its mounts are the host's",
                 "host workloads need the bpf-lsm backend", 0};
  }
  std::shared_ptr<Group> g(new Group());
  g->workload_ = w;
  g->mnt_ns_ = *theirs;
  g->rules_ = std::move(rules);
  g->mask_ = event_mask(*g->rules_);
  using policy::Category;
  g->undecidable_exec_ = policy::decide(
      *g->rules_, policy::Access{Category::Process, kUndecidablePath, {}, false, true});
  g->undecidable_file_ =
      policy::decide(*g->rules_, policy::Access{Category::File, kUndecidablePath, {}, false, true});
  const auto root = read_link("/proc/" + pid + "/root");
  if (!root) return errno_error("readlink /proc/" + pid + "/root");
  g->root_prefix_ = *root;
  g->placeholder_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!g->placeholder_) return errno_error("open /dev/null");
  return g;
}

Result<std::shared_ptr<Group>> Group::make(const workload::Workload& w,
                                           std::shared_ptr<const policy::RuleSet> rules,
                                           const LogFn& log) {
  auto g = prepare(w, std::move(rules));
  if (!g) return g;
  // FAN_REPORT_TID: the event names the thread, whose /proc/<tid>/syscall and stack are
  // the ones blocked in the open. FAN_UNLIMITED_QUEUE: on a full queue (16384 events by
  // default) the kernel drops a permission event and so ALLOWS the access
  // (fanotify_handle_event); unlimited, the queue is bounded by the workload's blocked
  // tasks instead (each waits for its answer).
  (*g)->fd_.reset(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID |
                                      FAN_UNLIMITED_QUEUE,
                                  O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!(*g)->fd_)
    return errno_error("fanotify_init", "needs CAP_SYS_ADMIN and a kernel with "
                                        "CONFIG_FANOTIFY_ACCESS_PERMISSIONS");
  auto report = mark_mounts((*g)->fd(), w.init_pid, (*g)->mask_);
  if (!report) return report.error();
  if (log) {
    for (const auto& f : report->failed) log("fanotify: " + w.id + ": cannot mark " + f);
  }
  return g;
}

Result<std::shared_ptr<Group>> Group::adopt(Fd fd, const workload::Workload& w,
                                            std::shared_ptr<const policy::RuleSet> rules) {
  auto g = prepare(w, std::move(rules));
  if (!g) return g;
  // The fd shares the original file description, FAN_NONBLOCK included (SCM_RIGHTS).
  (*g)->fd_ = std::move(fd);
  (*g)->adopted_ = true;
  return g;
}

void Group::shut_down() {
  if (closed_.exchange(true)) return;
  // dup3 onto an open number allocates nothing, so it cannot fail with EMFILE.
  (void)::dup3(placeholder_.get(), fd_.get(), O_CLOEXEC);
}

void Group::expect_interpreter(int tid, std::string interp) {
  const auto now = std::chrono::steady_clock::now();
  if (expected_.size() >= kMaxExpectations) {
    std::erase_if(expected_, [now](const auto& kv) { return kv.second.expires < now; });
    if (expected_.size() >= kMaxExpectations) expected_.clear();
  }
  expected_[tid] = Expectation{std::move(interp), now + kExpectationLifetime};
}

std::optional<std::string> Group::take_expected(int tid) {
  const auto it = expected_.find(tid);
  if (it == expected_.end()) return std::nullopt;
  auto e = std::move(it->second);
  expected_.erase(it);
  if (e.expires < std::chrono::steady_clock::now()) return std::nullopt;
  return std::move(e.interp);
}

} // namespace corral::enforce::fanotify
