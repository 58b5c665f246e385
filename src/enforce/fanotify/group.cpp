#include "enforce/fanotify/group.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/workload_facts.h"

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
                                              std::shared_ptr<const policy::RuleSet> rules,
                                              const LogFn& log, std::string* mountinfo) {
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
  std::string why;
  g->cgroup_id_ = workload_cgroup_id(w.init_pid, &why).value_or(0);
  if (g->cgroup_id_ == 0 && log) log("exec backstop: " + w.id + " not listed: " + why);
  g->start_ns_ = process_start_ns(w.init_pid).value_or(0);
  // The superblock of every mount now, so that an exec's approval reads no mountinfo.
  if (auto text = read_proc_file("/proc/" + pid + "/mountinfo", kMaxMountinfo)) {
    for (const auto& m : parse_mountinfo(*text)) g->devs_[m.id] = m.dev;
    if (mountinfo != nullptr) *mountinfo = std::move(*text);
  }
  // Exact process paths by identity, for events whose path is too long to read. Bounded:
  // a path longer than PATH_MAX is an attacker's doing, never a rule's.
  constexpr size_t kMaxRuleFiles = 4096;
  const auto root_fd = open_root(w.init_pid); // once, not per path
  for (const auto& [path, rules] : g->rules_->paths(policy::Category::Process).exact) {
    if (g->rule_files_.size() >= kMaxRuleFiles || !root_fd) break;
    if (const auto id = file_id_in_root_fd(root_fd->get(), path)) {
      g->rule_files_.emplace(*id, path);
      g->rule_ids_.emplace(path, *id);
    }
  }
  g->placeholder_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!g->placeholder_) return errno_error("open /dev/null");
  return g;
}

Result<std::shared_ptr<Group>> Group::make(const workload::Workload& w,
                                           std::shared_ptr<const policy::RuleSet> rules,
                                           const LogFn& log, bool mark) {
  std::string mountinfo;
  auto g = prepare(w, std::move(rules), log, &mountinfo);
  if (!g) return g;
  // FAN_REPORT_TID: the event names the thread, whose /proc/<tid>/syscall and stack are
  // the ones blocked in the open. FAN_UNLIMITED_QUEUE: on a full queue (16384 events by
  // default) the kernel drops a permission event and so ALLOWS the access
  // (fanotify_handle_event); unlimited, the queue is bounded by the workload's blocked
  // tasks instead (each waits for its answer).
  (*g)->fd_.reset(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID |
                                      FAN_UNLIMITED_QUEUE,
                                  O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!(*g)->fd_) {
    return errno_error("fanotify_init", errno == EMFILE || errno == ENFILE
                                            ? kGroupLimitHint
                                            : "needs CAP_SYS_ADMIN and a kernel with "
                                              "CONFIG_FANOTIFY_ACCESS_PERMISSIONS");
  }
  if (!mark) return g;
  auto report = mark_mounts((*g)->fd(), w.init_pid, (*g)->mask_, mountinfo);
  if (!report) return report.error();
  if (log) {
    for (const auto& f : report->failed) log("fanotify: " + w.id + ": cannot mark " + f);
  }
  return g;
}

Result<std::shared_ptr<Group>> Group::adopt(Fd fd, const workload::Workload& w,
                                            std::shared_ptr<const policy::RuleSet> rules) {
  auto g = prepare(w, std::move(rules), nullptr, nullptr);
  if (!g) return g;
  // The fd shares the original file description, FAN_NONBLOCK included (SCM_RIGHTS).
  (*g)->fd_ = std::move(fd);
  (*g)->adopted_ = true;
  return g;
}

bool Group::new_file(const struct stat& st) const {
  return rules_->settings().image_only && start_ns_ != 0 &&
         ctime_ns(st.st_ctim.tv_sec, st.st_ctim.tv_nsec) > start_ns_;
}

bool Group::shipped(const struct stat& st) const {
  return start_ns_ != 0 && ctime_ns(st.st_ctim.tv_sec, st.st_ctim.tv_nsec) <= start_ns_;
}

bool Group::moved_in(const policy::Verdict& v, const std::string& target,
                     const struct stat& st) const {
  if (!rules_->settings().image_only || start_ns_ == 0 || v.rule == nullptr) return false;
  const policy::Rule& r = *v.rule->rule;
  if (r.target == policy::Target::Path) {
    const auto it = rule_ids_.find(target);
    return it != rule_ids_.end() && it->second != FileId{st.st_dev, st.st_ino};
  }
  // A directory or a pattern: from its fixed directory down to the file.
  std::string base;
  if (r.target == policy::Target::Dir) {
    base = r.value;
  } else if (r.target == policy::Target::Pattern) {
    const std::string& p = v.rule->pattern();
    base = p.substr(0, p.find_first_of("*?[{"));
    base.erase(base.rfind('/') + 1);
  } else {
    return false;
  }
  if (base.empty() || !target.starts_with(base)) return false;
  const std::string root = "/proc/" + std::to_string(workload_.init_pid) + "/root";
  for (size_t slash = target.find('/', base.size()); slash != std::string::npos;
       slash = target.find('/', slash + 1)) {
    struct stat dir {};
    if (::stat((root + target.substr(0, slash)).c_str(), &dir) != 0) return true; // undecidable
    if (ctime_ns(dir.st_ctim.tv_sec, dir.st_ctim.tv_nsec) > start_ns_) return true;
  }
  return false;
}

std::optional<std::string> Group::rule_path_of(FileId id) const {
  const auto it = rule_files_.find(id);
  if (it == rule_files_.end()) return std::nullopt;
  return it->second;
}

std::optional<dev_t> Group::superblock_dev(int event_fd, int tid, dev_t st_dev) {
  const auto mount = mount_id_of(event_fd);
  if (!mount) return st_dev;
  std::lock_guard lock(devs_mu_);
  if (const auto it = devs_.find(*mount); it != devs_.end()) return it->second;
  // The mount is in the workload's namespace, or in one a task of it made (the tid's).
  auto dev = mount_dev(workload_.init_pid, *mount);
  if (!dev) dev = mount_dev(tid, *mount);
  if (!dev) return std::nullopt;
  if (devs_.size() > 4096) devs_.clear();
  devs_[*mount] = *dev;
  return dev;
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
