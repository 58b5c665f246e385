#include "enforce/fanotify/event_handler.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/exec_header.h"
#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "policy/decide.h"

namespace corral::enforce::fanotify {
namespace {

constexpr uint64_t kLoggedErrors = 20; // then every 1000th, to keep a storm readable

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
  if (::fstat(ev.fd(), &st) != 0) return allow_on_error(ev, "fstat of the event's file");
  // The path the kernel opened, as d_path() shows it from the agent's root (relative to
  // the container root when the runtime used pivot_root).
  const auto link = read_link("/proc/self/fd/" + std::to_string(ev.fd()));
  if (!link) return allow_on_error(ev, "readlink of the event's file");
  const std::string target = strip_root(*link, g.root_prefix());
  ev.note_path(target);
  if (exec) {
    const auto load = is_interpreter(g, ev.tid(), st);
    if (load != InterpreterLoad::None) return allow_interpreter(g, ev, target, st, load);
  }

  policy::Access access{category, target, {}, false, true};
  std::string source;
  if (!read_subject(g, ev, st, access, source)) return;
  const policy::Verdict v = policy::decide(g.rules(), access);
  // Who did it is read before the answer: once answered, an allowed exec replaces the
  // caller's image and a denied process often exits at once (its /proc is then gone).
  // Only alerting events pay for this.
  std::optional<Actor> who;
  if (v.alert && options_.sink) who = read_actor(ev.tid(), g.root_prefix());

  const bool ours = ev.answer(v.allow);
  const bool allowed = ours ? v.allow : ev.allowed(); // not ours: the watchdog's verdict
  const bool cacheable = ours && v.allow && !v.alert && cacheable_file(g, category, st);
  if (exec && allowed)
    after_exec_allowed(g, ev, cacheable);
  else if (cacheable)
    cache(g, ev.fd(), FAN_OPEN_PERM);

  if (who) {
    auto alert =
        make_alert(g.workload(), *who, v, AlertEvent{category, target, ev.mask(), allowed});
    alert.host_name = host_name_;
    options_.sink(std::move(alert));
  }
}

bool EventHandler::read_subject(Group& g, PendingEvent& ev, const struct stat& st,
                                policy::Access& access, std::string& source) {
  const auto& traits = g.rules().traits(access.category);
  if (traits.source) {
    // For exec events too: the exec has not replaced the image yet, so /proc/<tid>/exe is
    // the program calling exec, which is what fromSource names for process rules.
    const auto exe = read_link("/proc/" + std::to_string(ev.tid()) + "/exe");
    if (!exe) {
      allow_on_error(ev, "read the acting program");
      return false;
    }
    source = strip_root(*exe, g.root_prefix());
    access.source = source;
  }
  if (traits.owner) {
    const auto status = read_status(ev.tid());
    if (!status) {
      allow_on_error(ev, "read the process's uid");
      return false;
    }
    access.owner = st.st_uid == status->fsuid;
  }
  if (access.category == policy::Category::File && traits.write) {
    const OpenMode mode = blocked_open_mode(ev.tid());
    if (mode == OpenMode::Unknown) ++stats_.write_unknown;
    access.write = mode == OpenMode::Write;
  }
  return true;
}

bool EventHandler::cacheable_file(const Group& g, policy::Category c, const struct stat& st) const {
  return options_.cache && !g.rules().traits(c).subject_dependent() && S_ISREG(st.st_mode) &&
         st.st_nlink == 1;
}

void EventHandler::allow_interpreter(Group& g, PendingEvent& ev, const std::string& target,
                                     const struct stat& st, InterpreterLoad load) {
  ++stats_.interpreters;
  ev.answer(true);
  // It may be allowed on its own too (no allow-list): then it is cached like any exec.
  const auto own =
      policy::decide(g.rules(), policy::Access{policy::Category::Process, target, {}, false, true});
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
  if (!reused) {
    for (const auto& e : options_.backstop->entries()) {
      if (e.key.mnt_ns == mnt_ns) options_.backstop->erase(e.key);
    }
  }
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

void EventHandler::retire(Group& g) {
  std::lock_guard lock(backstop_mu_);
  g.supersede();
}

void EventHandler::keep_backstop_entries(const std::set<uint64_t>& enforced) {
  std::lock_guard lock(backstop_mu_);
  if (options_.backstop == nullptr) return;
  for (const auto& e : options_.backstop->entries()) {
    if (!enforced.contains(e.key.mnt_ns)) options_.backstop->erase(e.key);
  }
  for (const uint64_t ns : options_.backstop->unmarked_namespaces()) {
    if (!enforced.contains(ns)) options_.backstop->erase_unmarked(ns);
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
  if (g.cached >= options_.max_cached_per_group || g.closed()) return;
  // An inode ignore mark of this group: the kernel skips `mask` events on this inode for
  // the group's mount marks; SURV_MODIFY keeps it across writes (verdicts are by path).
  if (::fanotify_mark(g.fd(), FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
                      mask, event_fd, nullptr) != 0) {
    if (!cache_failure_logged_ && options_.log) {
      options_.log("fanotify: cannot add an ignore mark: " + std::string(strerror(errno)));
      cache_failure_logged_ = true;
    }
    return;
  }
  ++g.cached;
  ++stats_.cached;
}

void EventHandler::allow_on_error(PendingEvent& ev, const std::string& what) {
  ev.answer(true);
  const uint64_t n = ++stats_.errors_allowed;
  if (options_.log && (n <= kLoggedErrors || n % 1000 == 0)) {
    options_.log("fanotify: allowed an event of tid " + std::to_string(ev.tid()) + " after an " +
                 "error (" + std::to_string(n) + " so far): cannot " + what);
  }
}

} // namespace corral::enforce::fanotify
