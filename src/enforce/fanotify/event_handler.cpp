#include "enforce/fanotify/event_handler.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include <linux/magic.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/exec_header.h"
#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "policy/decide.h"
#include "policy/startup_set.h"

namespace corral::enforce::fanotify {
namespace {

constexpr uint64_t kLoggedErrors = 20; // then every 1000th, to keep a storm readable
// Distinct files one workload may have approved; the map holds 65536 for all together.
constexpr uint64_t kMaxApprovalsPerWorkload = 8192;

// Whether the file is the kernel's (sysfs): its inodes are made when first looked up, so
// their ctime says nothing of the image, and nobody can create, rename or link files there.
bool kernel_file(int fd) {
  struct statfs fs {};
  return ::fstatfs(fd, &fs) == 0 && fs.f_type == SYSFS_MAGIC;
}

} // namespace

EventHandler::EventHandler(HandlerOptions options, Stats& stats)
    : options_(std::move(options)), stats_(stats), stacks_(kernel_stacks_readable()) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) host_name_ = host;
}

void EventHandler::handle(Group& g, PendingEvent& ev) {
  if (options_.on_event) options_.on_event(ev.tid(), ev.mask());
  const bool exec = (ev.mask() & FAN_OPEN_EXEC_PERM) != 0;
  const auto category = exec ? policy::Category::Process : policy::Category::File;
  struct stat st {};
  if (::fstat(ev.fd(), &st) != 0)
    return undecidable(g, ev, category, "cannot fstat the event's file");
  // The path the kernel opened, as d_path() shows it from the agent's root (relative to
  // the container root when the runtime used pivot_root). Longer than PATH_MAX, it cannot
  // be read: the file is then judged by identity, as the exact rule path naming it.
  std::string target;
  if (const auto link = read_link("/proc/self/fd/" + std::to_string(ev.fd()))) {
    target = strip_root(*link, g.root_prefix());
  } else if (const auto named = g.rule_path_of({st.st_dev, st.st_ino})) {
    target = *named;
  } else {
    return undecidable(g, ev, category,
                       "cannot read the event's path (" + std::string(strerror(errno)) + ")");
  }
  ev.note_path(target);
  if (exec) {
    const auto load = is_interpreter(g, ev.tid(), st);
    if (load != InterpreterLoad::None) return allow_interpreter(g, ev, target, st, load);
  }

  policy::Access access{category, target, {}, false, true};
  std::string source;
  if (!read_subject(g, ev, st, access, source)) return;
  policy::Verdict v = policy::decide(g.rules(), access);
  // The kernel opening a file for an exec (FMODE_EXEC opens raise FAN_OPEN_EXEC_PERM, then
  // FAN_OPEN_PERM): the exec rules decided it at the first event, so the file rules do not
  // judge the second (POLICY.md "Interpreters"). Asked only when the file rules would deny
  // or alert; never cached (a read of the same file is judged).
  bool exec_open = false;
  if (!exec && (!v.allow || v.alert) && blocked_in_exec(ev.tid())) {
    v = policy::Verdict{};
    exec_open = true;
  }
  std::string reason;
  if (exec && v.allow && (g.new_file(st) || g.moved_in(v, target, st))) {
    // The image-only rule: the path is allowed, the file at it is not the image's.
    v = g.undecidable(category);
    reason = "file created, changed or moved in after the workload started";
  }
  // The exec backstop kills an exec it does not find approved: approve before allowing.
  if (exec && v.allow && !approve(g, ev, st, ExecBackstop::kExec)) {
    v = g.undecidable(category);
    reason = "cannot approve it in the exec backstop";
  }
  // Who did it is read before the answer: once answered, an allowed exec replaces the
  // caller's image and a denied process often exits at once (its /proc is then gone).
  // Only alerting events pay for this.
  std::optional<Actor> who;
  if (v.alert && options_.sink) who = read_actor(ev.tid(), g.root_prefix());

  const bool ours = ev.answer(v.allow);
  const bool allowed = ours ? v.allow : ev.allowed(); // not ours: the watchdog's verdict
  const bool cacheable = ours && v.allow && !v.alert && !exec_open && v.startup == nullptr &&
                         cacheable_file(g, category, st);
  if (exec && allowed)
    after_exec_allowed(g, ev, cacheable);
  else if (cacheable)
    cache(g, ev.fd(), FAN_OPEN_PERM);

  if (who) alert(g, *who, v, AlertEvent{category, target, ev.mask(), allowed}, reason);
}

void EventHandler::alert(Group& g, const Actor& who, const policy::Verdict& v, const AlertEvent& e,
                         const std::string& reason) {
  auto a = make_alert(g.workload(), who, v, e);
  a.host_name = host_name_;
  if (!reason.empty()) a.data += " corral=\"" + reason + "\"";
  options_.sink(std::move(a));
}

bool EventHandler::approve(Group& g, const PendingEvent& ev, const struct stat& st,
                           uint32_t kinds) {
  if (options_.backstop == nullptr || g.cgroup_id() == 0) return true; // nothing checks
  // The approvals of all workloads share one map: one workload (a block-list lets it run
  // any new file) must not fill it for the others. (Approving the same file again does
  // not count; the count starts afresh with each group, as the approvals do.)
  if (g.approvals >= kMaxApprovalsPerWorkload) return false;
  const auto dev = g.superblock_dev(ev.fd(), ev.tid(), st.st_dev);
  if (!dev) return false;
  const ExecBackstop::FileState f{kernel_dev(*dev), st.st_ino, st.st_ctim.tv_sec,
                                  static_cast<uint32_t>(st.st_ctim.tv_nsec)};
  const auto added = options_.backstop->approve(g.cgroup_id(), f, kinds);
  if (!added) {
    if (options_.log) options_.log("exec backstop: " + added.error().to_string());
    return false;
  }
  if (*added) ++g.approvals;
  return true;
}

bool EventHandler::read_subject(Group& g, PendingEvent& ev, const struct stat& st,
                                policy::Access& access, std::string& source) {
  const auto& traits = g.rules().traits(access.category);
  if (traits.source) {
    // For exec events too: the exec has not replaced the image yet, so /proc/<tid>/exe is
    // the program calling exec, which is what fromSource names for process rules.
    const auto exe = read_program(ev.tid());
    if (!exe) {
      undecidable(g, ev, access.category, "cannot read the acting program");
      return false;
    }
    source = strip_root(*exe, g.root_prefix());
    access.source = source;
  }
  if (traits.owner) {
    const auto status = read_status(ev.tid());
    if (!status) {
      undecidable(g, ev, access.category, "cannot read the process's uid");
      return false;
    }
    access.owner = st.st_uid == status->fsuid;
  }
  if (traits.pts) access.pts = read_tty(ev.tid()).starts_with("pts");
  if (access.category != policy::Category::File) return true;
  // The implicit start-up set covers reads of files the image shipped: for a path in it the
  // open mode is always read, and an unknown one counts as a write.
  const bool startup =
      g.rules().has_allow(access.category) && policy::startup_entry(access.target) != nullptr;
  if (startup) access.shipped = g.shipped(st) || kernel_file(ev.fd());
  if (traits.write || startup) {
    const OpenMode mode = blocked_open_mode(ev.tid());
    if (mode == OpenMode::Unknown) ++stats_.write_unknown;
    access.write = mode == OpenMode::Write || (startup && mode == OpenMode::Unknown);
  }
  return true;
}

bool EventHandler::cacheable_file(const Group& g, policy::Category c, const struct stat& st) const {
  return options_.cache && !g.rules().traits(c).subject_dependent() && S_ISREG(st.st_mode) &&
         st.st_nlink == 1;
}

void EventHandler::allow_interpreter(Group& g, PendingEvent& ev, const std::string& target,
                                     const struct stat& st, InterpreterLoad load) {
  // It may be allowed on its own too (no allow-list): then it is cached like any exec.
  const auto own =
      policy::decide(g.rules(), policy::Access{policy::Category::Process, target, {}, false, true});
  if (g.new_file(st)) {
    return undecidable(g, ev, policy::Category::Process,
                       "interpreter " + target + " created, changed or moved in after the " +
                           "workload started");
  }
  const uint32_t kinds = ExecBackstop::kInterp | (own.allow ? uint32_t{ExecBackstop::kExec} : 0U);
  if (!approve(g, ev, st, kinds))
    return undecidable(g, ev, policy::Category::Process, "cannot approve it in the exec backstop");
  ++stats_.interpreters;
  ev.answer(true);
  const bool cacheable = cacheable_file(g, policy::Category::Process, st);
  const bool own_cacheable = own.allow && !own.alert && cacheable;
  after_exec_allowed(g, ev, own_cacheable);
  if (!own_cacheable && cacheable && load == InterpreterLoad::Elf &&
      guard_interpreter(g, ev, st, target, own)) {
    cache(g, ev.fd(), FAN_OPEN_EXEC_PERM);
  }
}

bool EventHandler::guard_interpreter(Group& g, const PendingEvent& ev, const struct stat& st,
                                     const std::string& target, const policy::Verdict& own) {
  if (options_.backstop == nullptr || g.mnt_ns() == 0) return false;
  // The program keys the file by its superblock's device, which stat() reports only where
  // the filesystem does not substitute another (overlayfs across filesystems): both must
  // agree, or the entry would never match and a direct exec would pass. (The mount table
  // is the workload's init's: the exec that raised the event has been answered and may be
  // gone; a task in another mount namespace has no entry here anyway.)
  const auto mount = mount_id_of(ev.fd());
  const auto dev = mount ? mount_dev(g.workload().init_pid, *mount) : std::nullopt;
  if (!dev || *dev != st.st_dev) return false;
  const ExecBackstop::Entry entry{{g.mnt_ns(), kernel_dev(st.st_dev), st.st_ino},
                                  own.allow ? ExecBackstop::Action::Audit
                                            : ExecBackstop::Action::Block,
                                  target};
  std::lock_guard lock(backstop_mu_);
  if (g.superseded()) return false;
  if (auto r = options_.backstop->set(entry); !r) {
    if (options_.log) options_.log("exec backstop: " + r.error().to_string());
    return false;
  }
  return true;
}

void EventHandler::rules_changed(Group* old, uint64_t mnt_ns, const policy::RuleSet* rules,
                                 bool reused) {
  std::lock_guard lock(backstop_mu_);
  if (old != nullptr) old->supersede();
  if (options_.backstop == nullptr || mnt_ns == 0) return;
  // A new group starts with an empty cache and lists what it caches itself; the entries
  // belong to caches that are going. (A reused group keeps its cache and its entries.)
  if (!reused) options_.backstop->erase_namespace(mnt_ns);
  // Files on internal mounts (memfd): the verdict an exec fanotify never sees would get.
  const auto unmarked =
      rules == nullptr
          ? policy::Verdict{}
          : policy::decide(
                *rules,
                policy::Access{policy::Category::Process, kUnmarkedExecPath, {}, false, true});
  if (unmarked.allow && !unmarked.alert) {
    options_.backstop->erase_unmarked(mnt_ns);
  } else if (auto r = options_.backstop->set_unmarked(mnt_ns, unmarked.allow
                                                                  ? ExecBackstop::Action::Audit
                                                                  : ExecBackstop::Action::Block);
             !r && options_.log) {
    options_.log("exec backstop: " + r.error().to_string());
  }
}

void EventHandler::workload_changed(const Group* old, const Group* now, bool reused) {
  std::lock_guard lock(backstop_mu_);
  if (options_.backstop == nullptr) return;
  const uint64_t before = old ? old->cgroup_id() : 0;
  const uint64_t after = now ? now->cgroup_id() : 0;
  if (before != 0 && before != after) options_.backstop->erase_workload(before);
  if (after == 0) return;
  // A new group judges afresh: what older rules approved is no longer approved.
  if (!reused) options_.backstop->erase_approvals(after);
  using Action = ExecBackstop::Action;
  const policy::Verdict& v = now->undecidable(policy::Category::Process);
  const Action judged = !v.allow ? Action::Block : Action::Audit;
  ExecBackstop::WorkloadRule rule;
  // Execs the permission path never saw: the "could not decide" verdict (killed under an
  // allow-list with posture block); under a block-list they are reported, since nothing
  // here can say whether the file was a blocked one.
  if (now->mask() & FAN_OPEN_EXEC_PERM) rule.unapproved = judged;
  // New code mapped into a process: only an allow-list promises there is none.
  if (now->rules().has_allow(policy::Category::Process) && (!v.allow || v.alert))
    rule.mapped = judged;
  rule.start_ns = now->rules().settings().image_only ? now->start_ns() : 0;
  if (rule.start_ns == 0) rule.mapped = Action::None; // no start time: no way to tell
  if (auto r = options_.backstop->set_workload(after, rule); !r && options_.log)
    options_.log("exec backstop: " + r.error().to_string());
}

void EventHandler::retire(Group& g) {
  std::lock_guard lock(backstop_mu_);
  g.supersede();
}

void EventHandler::keep_backstop_entries(const std::set<uint64_t>& enforced,
                                         const std::set<uint64_t>& enforced_cgroups) {
  std::lock_guard lock(backstop_mu_);
  if (options_.backstop == nullptr) return;
  for (const auto& e : options_.backstop->entries()) {
    if (!enforced.contains(e.key.mnt_ns)) options_.backstop->erase(e.key);
  }
  for (const uint64_t ns : options_.backstop->unmarked_namespaces()) {
    if (!enforced.contains(ns)) options_.backstop->erase_unmarked(ns);
  }
  for (const uint64_t cgroup : options_.backstop->workload_cgroups()) {
    if (!enforced_cgroups.contains(cgroup)) options_.backstop->erase_workload(cgroup);
  }
}

InterpreterLoad EventHandler::is_interpreter(Group& g, int tid, const struct stat& st) {
  const FileId id{st.st_dev, st.st_ino};
  // Every exec event of the thread consumes what its previous exec expected.
  const auto expected = g.take_expected(tid);
  bool named = false;
  if (expected) {
    const auto expected_id = file_id_in_root(tid, *expected);
    named = expected_id && *expected_id == id;
  }
  if (!named && !(stacks_ && (g.adopted() || g.cached_interpreters.contains(id))))
    return InterpreterLoad::None;
  // Without kernel stacks the kind is unknown: Other, which the backstop never guards.
  if (!stacks_) return named ? InterpreterLoad::Other : InterpreterLoad::None;
  const auto load = opening_interpreter(tid).value_or(InterpreterLoad::None);
  // Unnamed (a cached binary's, or an adopted group's): only ELF interpreters, because only
  // ELF binaries are cached. A "#!" interpreter is allowed only when named by its script's
  // own event: a script in a memfd, which no mark sees, gets its interpreter judged alone.
  return named || load == InterpreterLoad::Elf ? load : InterpreterLoad::None;
}

void EventHandler::after_exec_allowed(Group& g, const PendingEvent& ev, bool cacheable) {
  bool script = false;
  const auto interp = interpreter_of(ev.fd(), &script);
  if (interp) g.expect_interpreter(ev.tid(), *interp);
  if (!cacheable) return;
  if (interp) {
    // With the exec cached, only the interpreter's event remains, and only the kernel
    // stack tells it from a direct exec of the interpreter. Scripts are not cached: their
    // interpreter must be named by the script's own event (see is_interpreter).
    if (!stacks_ || script) return;
    const auto id = file_id_in_root(ev.tid(), *interp);
    if (!id) return;
    g.cached_interpreters.insert(*id);
  }
  cache(g, ev.fd(), FAN_OPEN_EXEC_PERM);
}

void EventHandler::cache(Group& g, int event_fd, uint64_t mask) {
  // Ignore marks pin inodes in the kernel: bounded per group (a new group starts afresh).
  if (g.cached >= options_.max_cached_per_group || g.closed() ||
      stats_.cache_marks >= options_.max_cached_total)
    return;
  // An inode ignore mark of this group: the kernel skips `mask` events on this inode for
  // the group's mount marks. Without FAN_MARK_IGNORED_SURV_MODIFY a write to the file
  // clears it (fsnotify: FS_MODIFY clears such ignore masks), so rewritten contents are
  // judged again. It survives a rename or link; the exec backstop then finds the file's
  // ctime changed since its approval and kills the exec.
  if (::fanotify_mark(g.fd(), FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, mask, event_fd, nullptr) != 0) {
    if (!cache_failure_logged_ && options_.log) {
      options_.log("fanotify: cannot add an ignore mark: " + std::string(strerror(errno)));
      cache_failure_logged_ = true;
    }
    return;
  }
  ++g.cached;
  ++stats_.cached;
  ++stats_.cache_marks;
}

void EventHandler::undecidable(Group& g, PendingEvent& ev, policy::Category category,
                               const std::string& why) {
  // DESIGN.md threat model: what the agent cannot judge gets the workload's "could not
  // decide" verdict — deny and alert under an allow-list with posture block, never allow.
  const policy::Verdict& v = g.undecidable(category);
  std::optional<Actor> who;
  if (v.alert && options_.sink) who = read_actor(ev.tid(), g.root_prefix());
  const bool ours = ev.answer(v.allow);
  const uint64_t n = v.allow ? ++stats_.errors_allowed : ++stats_.errors_denied;
  if (options_.log && (n <= kLoggedErrors || n % 1000 == 0)) {
    options_.log(std::string("fanotify: ") + (v.allow ? "allowed" : "denied") +
                 " an event of tid " + std::to_string(ev.tid()) + " it could not judge (" +
                 std::to_string(n) + " so far): " + why);
  }
  if (who) {
    alert(g, *who, v, AlertEvent{category, kUndecidablePath, ev.mask(), v.allow || !ours},
          "could not judge: " + why);
  }
}

} // namespace corral::enforce::fanotify
