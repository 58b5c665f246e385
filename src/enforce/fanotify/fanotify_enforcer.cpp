#include "enforce/fanotify/fanotify_enforcer.h"

#include <csignal>
#include <set>

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

#include "core/fd.h"
#include "core/strings.h"
#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/event_handler.h"
#include "enforce/fanotify/group.h"
#include "enforce/fanotify/journal.h"
#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/prover.h"
#include "enforce/fanotify/responder.h"
#include "enforce/fanotify/workload_facts.h"

namespace corral::enforce {

FanotifyEnforcer::FanotifyEnforcer(Options options)
    : options_(std::move(options)), stats_(std::make_unique<fanotify::Stats>()) {}

FanotifyEnforcer::~FanotifyEnforcer() {
  {
    std::lock_guard lock(reading_mu_);
    reading_ = nullptr; // the prover's thread reads no more groups
  }
  // Join the threads before the groups go: closing a group fd allows its pending events.
  responder_.reset();
  backstop_.reset(); // its reader thread reports through groups_
  std::lock_guard lock(mu_);
  groups_.clear();
}

Result<std::unique_ptr<FanotifyEnforcer>> FanotifyEnforcer::make(Options options) {
  // A throwaway group tells whether permission events work here (EPERM without
  // CAP_SYS_ADMIN, EINVAL without CONFIG_FANOTIFY_ACCESS_PERMISSIONS).
  const Fd probe(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID, O_RDONLY));
  if (!probe) {
    return errno_error("fanotify_init(FAN_CLASS_CONTENT)",
                       "run as root on a kernel with CONFIG_FANOTIFY_ACCESS_PERMISSIONS");
  }
  std::unique_ptr<FanotifyEnforcer> e(new FanotifyEnforcer(std::move(options)));
  e->leftovers_ = std::make_unique<fanotify::Leftovers>();
  if (!e->options_.journal.empty()) {
    auto j = fanotify::Journal::open(e->options_.journal, e->leftovers_.get());
    if (j) {
      e->journal_ = std::move(*j);
    } else if (e->options_.log) {
      // Enforcement goes on; what a crash leaves pending is then answered by the sweep
      // alone (every number up to the bound a previous journal kept, if any).
      e->options_.log("fanotify: no event journal (a crash may leave events pending): " +
                      j.error().to_string());
    }
  }
  e->start_backstop();
  fanotify::HandlerOptions h{e->options_.sink,
                             e->options_.log,
                             e->options_.cache,
                             e->options_.max_cached_per_workload,
                             e->options_.max_cached_total,
                             e->backstop_.get(),
                             e->options_.on_event};
  e->handler_ = std::make_unique<fanotify::EventHandler>(std::move(h), *e->stats_);
  if (e->options_.prove) {
    e->prover_ = std::make_unique<fanotify::Prover>(
        fanotify::Prover::Options{e->options_.sink, e->options_.log, e->options_.proof_timeout,
                                  [e = e.get()](const std::shared_ptr<fanotify::Group>& g) {
                                    std::lock_guard lock(e->reading_mu_);
                                    if (e->reading_ != nullptr) e->reading_->read(g);
                                  }});
  }
  fanotify::Responder::Options ro{e->options_.reply_bound, e->options_.responder_threads,
                                  e->journal_.get(), e->options_.on_path};
  auto responder = fanotify::Responder::make(
      ro,
      [handler = e->handler_.get(), prover = e->prover_.get(),
       stats = e->stats_.get()](fanotify::Group& g, fanotify::PendingEvent& ev) {
        // A canary's event (fanotify/prover.h) is answered here, never decided by rules, and
        // not counted: the counters are the workloads'.
        if (bool allow = false; prover != nullptr && prover->on_event(g, ev.tid(), allow)) {
          if (ev.answer(allow)) {
            --stats->events;
            if (!allow) --stats->denied;
          }
          return;
        }
        handler->handle(g, ev);
      },
      *e->stats_, e->options_.log);
  if (!responder) return responder.error();
  e->responder_ = std::move(*responder);
  {
    std::lock_guard lock(e->reading_mu_);
    e->reading_ = e->responder_.get();
  }
  return e;
}

void FanotifyEnforcer::start_backstop() {
  const bool kept = options_.kept_backstop.valid();
  const auto log = [this](const std::string& m) {
    if (options_.log) options_.log(m);
  };
  auto on_hit = [this](const ExecBackstop::Hit& hit) { on_backstop_hit(hit); };
  Fd spare;
  if (kept) spare.reset(::fcntl(options_.kept_backstop.get(), F_DUPFD_CLOEXEC, 0));
  bool took_over = false;
  if (options_.exec_backstop && kept) {
    auto b = ExecBackstop::adopt(std::move(options_.kept_backstop), on_hit);
    if (b) {
      backstop_ = std::move(*b);
      took_over = true;
    } else {
      log("exec backstop: cannot take over the kept one: " + b.error().to_string());
    }
  }
  if (options_.exec_backstop && !backstop_) {
    auto b = ExecBackstop::make(on_hit);
    if (b) {
      backstop_ = std::move(*b);
    } else {
      log("exec backstop off (ELF interpreters ask on every exec): " + b.error().to_string());
    }
  }
  // Kept groups may cache interpreters that only the kept backstop's entries guard: without
  // those, they are read beside new groups, not reused; and the kept program stays attached
  // until every kept group is replaced or released (release_unclaimed).
  if (kept && !took_over) {
    reuse_kept_ = false;
    kept_link_ = std::move(spare);
  }
  if (backstop_ && !backstop_->mapping_error().empty())
    log("exec backstop: executable mappings of new files are not judged here: " +
        backstop_->mapping_error());
  // The holder keeps ours (replacing a kept one we could not take over).
  if (backstop_ && options_.on_group) {
    for (const auto& [suffix, fd] : backstop_->links())
      options_.on_group(std::string(kBackstopId) + suffix, fd, "v2");
  }
}

void FanotifyEnforcer::hand_over_locked(const std::string& id, int fd, const std::string& meta) {
  metas_[id] = meta;
  if (options_.on_group) options_.on_group(id, fd, meta);
}

void FanotifyEnforcer::rehand() {
  std::lock_guard lock(mu_);
  if (!options_.on_group) return;
  if (backstop_) {
    for (const auto& [suffix, fd] : backstop_->links())
      options_.on_group(std::string(kBackstopId) + suffix, fd, "v2");
  } else if (kept_link_) {
    options_.on_group(kBackstopId, kept_link_.get(), "v1");
  }
  for (const auto& [id, a] : adopted_) options_.on_group(id, a.fd.get(), a.meta);
  for (const auto& [id, g] : groups_) {
    const auto m = metas_.find(id);
    if (m != metas_.end()) options_.on_group(id, g->fd(), m->second);
  }
}

// Before a kept group is read by this agent: the events its predecessor had read and not
// answered are pending on it under that agent's fd numbers, which this agent's own event
// fds would reuse (journal.h). Judged with the new rules where the path was recorded.
void FanotifyEnforcer::release_leftovers_locked(const fanotify::Group& g) {
  const auto it = leftovers_->by_workload.find(g.workload().id);
  static const std::vector<fanotify::LeftEvent> kNone;
  const auto& left = it == leftovers_->by_workload.end() ? kNone : it->second;
  const size_t n = fanotify::answer_leftovers(
      g.fd(), left, leftovers_->max_fd, !g.fail_closed(),
      [&g](const fanotify::LeftEvent& e) { return fanotify::leftover_verdict(g, e); });
  stats_->leftovers += n;
  if (n > 0 && options_.log) {
    options_.log("fanotify: " + g.workload().id + ": answered " + std::to_string(n) +
                 " events the previous agent left pending");
  }
}

uint64_t FanotifyEnforcer::leftovers_answered() const {
  return stats_->leftovers;
}

void FanotifyEnforcer::on_backstop_hit(const ExecBackstop::Hit& hit) {
  std::shared_ptr<fanotify::Group> g;
  HitContext context;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, group] : groups_) {
      if (hit.cgroup != 0 ? group->cgroup_id() == hit.cgroup : group->mnt_ns() == hit.key.mnt_ns)
        g = group;
    }
    if (!g && hit.cgroup != 0) {
      for (const auto& [id, c] : contained_) {
        if (c.cgroup == hit.cgroup) context = c.context;
      }
    }
    // Reported while no agent ran (a kept backstop), read before its workload is enforced
    // again: kept until then.
    if (!g && !context.rules) {
      if (orphan_hits_.size() < kMaxOrphanHits) orphan_hits_.push_back(hit);
      return;
    }
  }
  if (g) context = HitContext{g->workload(), g->rules_ptr(), g->root_prefix()};
  alert_backstop_hit(context, hit);
}

void FanotifyEnforcer::alert_backstop_hit(const HitContext& c, const ExecBackstop::Hit& hit) {
  if (!options_.sink) return;
  using Kind = ExecBackstop::Kind;
  // A file on an internal mount is named as /proc/<pid>/exe shows it: "/memfd:x (deleted)".
  // Other kinds name the file by its path inside its mount (the workload's root for its
  // root filesystem), "/..." first when it was too deep to name whole.
  const std::string resource =
      hit.kind == Kind::Unmarked ? "/" + hit.path + " (deleted)" : hit.path;
  const auto v = policy::decide(
      *c.rules, policy::Access{policy::Category::Process, resource, {}, false, true});
  fanotify::Actor who;
  who.tid = who.tgid = static_cast<int>(hit.host_pid);
  who.ppid = static_cast<int>(hit.host_ppid);
  who.ns_pid = static_cast<int>(hit.pid);
  who.ns_ppid = static_cast<int>(hit.ppid);
  who.uid = hit.uid;
  // Reparented before its exec (its caller started it and exited at once): the process that
  // started it is the caller, as the system monitor remembers it.
  if (const auto self = fanotify::remembered(who.tgid);
      self && self->forked_by > 0 && self->forked_by != who.ppid) {
    if (const auto caller = fanotify::remembered(self->forked_by); caller && caller->nspid > 0) {
      who.ppid = self->forked_by;
      who.ns_ppid = caller->nspid;
    }
  }
  // Who ran the exec: its old image is gone at this tracepoint, so the parent stands for it
  // (the caller for fork + exec, as from a shell; for a process that execs without forking
  // it names that process's parent). Only a parent inside the workload is named.
  if (who.ns_ppid != 0) fanotify::read_process(who.ppid, c.root_prefix, who);
  const bool blocked = hit.action == ExecBackstop::Action::Block;
  auto alert = fanotify::make_alert(
      c.workload, who, v, fanotify::AlertEvent{policy::Category::Process, resource, 0, !blocked});
  alert.data = hit.kind == Kind::Mapped ? "bpf=page_fault" : "bpf=sched_process_exec";
  if (blocked) alert.data += " signal=SIGKILL";
  static constexpr const char* kWhy[] = {
      "", "", "corral=\"exec not judged by the permission path (unmarked mount or namespace)\"",
      "corral=\"file renamed, linked or changed since it was allowed\"",
      "corral=\"executable mapping of a file that is not the image's own\""};
  if (const auto k = static_cast<size_t>(hit.kind); k < std::size(kWhy) && *kWhy[k] != 0)
    alert.data += std::string(" ") + kWhy[k];
  if (!hit.args.empty()) alert.data += " argv=" + join(hit.args, " ");
  if (blocked) alert.result = "Permission denied";
  if (blocked && v.allow) alert.action = "Block"; // killed under rules changed since
  options_.sink(std::move(alert));
}

Result<void> FanotifyEnforcer::enforce(const workload::Workload& w,
                                       std::shared_ptr<const policy::RuleSet> rules) {
  if (!rules || fanotify::event_mask(*rules) == 0) {
    release(w.id);
    return {};
  }
  std::shared_ptr<fanotify::Group> group;
  std::vector<ExecBackstop::Hit> hits;
  {
    std::lock_guard lock(mu_);
    auto r = enforce_locked(w, rules);
    if (!r) {
      // Its old group, if any, enforces its old rules; with none, say what holds it instead.
      if (groups_.contains(w.id)) return r;
      Error e = r.error();
      contain_locked(w, std::move(rules), e.message);
      return e;
    }
    contained_.erase(w.id);
    group = groups_[w.id];
    std::erase_if(orphan_hits_, [&](const ExecBackstop::Hit& h) {
      if (h.cgroup != 0 ? h.cgroup != group->cgroup_id() : h.key.mnt_ns != group->mnt_ns())
        return false;
      hits.push_back(h);
      return true;
    });
  }
  const HitContext context{group->workload(), group->rules_ptr(), group->root_prefix()};
  for (const auto& h : hits) alert_backstop_hit(context, h);
  return {};
}

void FanotifyEnforcer::contain_locked(const workload::Workload& w,
                                      std::shared_ptr<const policy::RuleSet> rules,
                                      std::string& why) {
  const auto undecidable = policy::decide(
      *rules,
      policy::Access{policy::Category::Process, fanotify::kUndecidablePath, {}, false, true});
  if (undecidable.allow) {
    why += "; nothing stops its execs meanwhile (its rules allow what cannot be judged)";
    return;
  }
  std::string no_cgroup;
  const auto cgroup = fanotify::workload_cgroup_id(w.init_pid, &no_cgroup);
  if (!backstop_ || !cgroup) {
    why += "; nothing stops its execs meanwhile (" +
           (backstop_ ? no_cgroup : std::string("the exec backstop is off")) + ")";
    return;
  }
  // Nothing of it is approved: every exec is killed (and alerted) until a group enforces it.
  backstop_->erase_approvals(*cgroup);
  ExecBackstop::WorkloadRule rule;
  rule.unapproved = ExecBackstop::Action::Block;
  if (auto r = backstop_->set_workload(*cgroup, rule); !r) {
    why += "; nothing stops its execs meanwhile (" + r.error().message + ")";
    return;
  }
  contained_[w.id] = Contained{*cgroup, HitContext{w, std::move(rules), ""}};
  why += "; until it is, the exec backstop kills every exec in it (posture block: what cannot "
         "be judged is denied)";
}

Result<void> FanotifyEnforcer::enforce_locked(const workload::Workload& w,
                                              std::shared_ptr<const policy::RuleSet> rules) {
  // "backstop": its cache may hold interpreters only the backstop guards, so an agent
  // without it (or an older one) must not reuse the group as it is.
  // "undecidable=": the group's verdicts for what cannot be judged (exec, file; a: allow,
  // d: deny), with which the fd holder answers its events while no agent runs.
  const auto undecidable = [&rules](policy::Category c) {
    return policy::decide(*rules, policy::Access{c, fanotify::kUndecidablePath, {}, false, true})
                   .allow
               ? 'a'
               : 'd';
  };
  const std::string meta = std::to_string(w.init_pid) + " " + rules->fingerprint() +
                           (backstop_ ? " backstop" : "") +
                           " undecidable=" + undecidable(policy::Category::Process) +
                           undecidable(policy::Category::File);
  auto adopted = adopted_.extract(w.id);
  const bool reuse = !adopted.empty() && adopted.mapped().meta == meta && reuse_kept_;
  const bool over_test_limit = options_.test_max_groups > 0 && !reuse &&
                               groups_.size() + stale_.size() >= options_.test_max_groups;
  auto group = over_test_limit ? Result<std::shared_ptr<fanotify::Group>>(Error{
                                     "fanotify_init: Too many open files (test limit of " +
                                         std::to_string(options_.test_max_groups) + " groups)",
                                     fanotify::kGroupLimitHint, EMFILE})
               : reuse         ? fanotify::Group::adopt(std::move(adopted.mapped().fd), w, rules)
                       : fanotify::Group::make(w, rules, options_.log, !options_.test_unmarked);
  if (!group) {
    // The holder's copy of a kept group nobody reads would keep its cache, unguarded.
    if (!adopted.empty() && options_.on_release) options_.on_release(w.id);
    return group.error();
  }
  if (reuse) release_leftovers_locked(**group);
  auto& slot = groups_[w.id];
  const bool first_for_task = !slot || slot->mnt_ns() != (*group)->mnt_ns();
  // Before the new group reads anything: backstop entries of the old caches go (a new group
  // guards what it caches itself), the old group can add no more.
  if (slot && slot->mnt_ns() != (*group)->mnt_ns()) // a new task (restarted container)
    handler_->rules_changed(slot.get(), slot->mnt_ns(), nullptr, false);
  handler_->rules_changed(slot.get(), (*group)->mnt_ns(), rules.get(), reuse);
  handler_->workload_changed(slot.get(), group->get(), reuse);
  // With a prover, the group is read once its first canary waits in its event (prover.h).
  if (auto added = responder_->add(*group, prover_ == nullptr); !added) {
    if (!adopted.empty() && options_.on_release) options_.on_release(w.id);
    return added.error();
  }
  if (prover_) prover_->begin(*group);
  if (slot) responder_->remove(slot); // the old group closes when its last event is answered
  slot = std::move(*group);
  drop_stale_locked(w.id);
  if (!adopted.empty() && !reuse) {
    // Built for other rules or another task: its cache may be wrong, so the new group
    // decides from now on, but what queued on it meanwhile is read with the new rules.
    if (auto old = fanotify::Group::adopt(std::move(adopted.mapped().fd), w, rules); old) {
      release_leftovers_locked(**old);
      handler_->retire(**old); // it only answers what queued: it caches nothing new
      if (responder_->add(*old)) stale_[w.id] = std::move(*old);
    }
  }
  if (options_.on_rules) options_.on_rules(w, *rules);
  if (reuse)
    metas_[w.id] = meta;
  else
    hand_over_locked(w.id, slot->fd(), meta);
  if (w.fresh && first_for_task && !reuse) judge_started_program_locked(*slot);
  return {};
}

void FanotifyEnforcer::judge_started_program_locked(const fanotify::Group& g) {
  const std::string exe_link = "/proc/" + std::to_string(g.workload().init_pid) + "/exe";
  const Fd exe(::open(exe_link.c_str(), O_PATH | O_CLOEXEC));
  const auto mount = exe ? fanotify::mount_id_of(exe.get()) : std::nullopt;
  // Still the runtime's init (its binary is not on the workload's mounts): the program's
  // exec comes through the marks and the exec backstop, which are in place now.
  if (!mount || !g.workload_mount(*mount)) return;
  const auto link = fanotify::read_link(exe_link);
  struct stat st {};
  if (!link || ::fstat(exe.get(), &st) != 0) return;
  const std::string path = fanotify::strip_root(*link, g.root_prefix());
  auto v =
      policy::decide(g.rules(), policy::Access{policy::Category::Process, path, {}, false, true});
  if (v.allow && g.new_file(st)) v = g.undecidable(policy::Category::Process);
  if (v.allow && !v.alert) return;
  // Denied: the program goes now, as its exec would have been refused. (Its pid is the
  // workload's init, alive: the runtime reaps it only once we are done.)
  const bool killed = !v.allow && ::kill(g.workload().init_pid, SIGKILL) == 0;
  if (options_.log) {
    options_.log("fanotify: " + g.workload().id + ": its program " + path +
                 " ran before its rules were in force" + (killed ? "; killed" : ""));
  }
  if (!options_.sink) return;
  fanotify::Actor who;
  who.tid = who.tgid = g.workload().init_pid;
  who.ns_pid = 1;
  auto alert = fanotify::make_alert(
      g.workload(), who, v, fanotify::AlertEvent{policy::Category::Process, path, 0, !killed});
  alert.data = "corral=\"ran before its rules were in force (the agent came after the "
               "container's start)\"";
  if (killed) {
    alert.data += " signal=SIGKILL";
    alert.result = "Permission denied";
  }
  options_.sink(std::move(alert));
}

void FanotifyEnforcer::drop_stale_locked(const std::string& id) {
  if (const auto it = stale_.find(id); it != stale_.end()) {
    handler_->retire(*it->second);
    responder_->remove(it->second);
    stale_.erase(it);
  }
}

void FanotifyEnforcer::release(const std::string& id) {
  std::lock_guard lock(mu_);
  if (const auto c = contained_.find(id); c != contained_.end()) {
    if (backstop_) backstop_->erase_workload(c->second.cgroup);
    contained_.erase(c);
  }
  if (prover_) prover_->forget(id);
  drop_stale_locked(id);
  const auto it = groups_.find(id);
  if (it == groups_.end()) return;
  // The holder's copy first: the group ends only when no process holds it any more.
  if (options_.on_release) options_.on_release(id);
  metas_.erase(id);
  handler_->rules_changed(it->second.get(), it->second->mnt_ns(), nullptr, false);
  handler_->workload_changed(it->second.get(), nullptr, false);
  responder_->remove(it->second);
  groups_.erase(it);
}

void FanotifyEnforcer::adopt(const std::string& id, Fd fd, std::string meta) {
  std::lock_guard lock(mu_);
  adopted_[id] = Adopted{std::move(fd), std::move(meta)};
}

size_t FanotifyEnforcer::release_unclaimed() {
  std::lock_guard lock(mu_);
  const size_t n = adopted_.size();
  for (auto& [id, a] : adopted_) {
    if (options_.on_release) options_.on_release(id);
  }
  adopted_.clear(); // closing allows whatever queued on them: their workloads are gone
  std::set<uint64_t> enforced, cgroups;
  for (const auto& [id, g] : groups_) enforced.insert(g->mnt_ns()), cgroups.insert(g->cgroup_id());
  for (const auto& [id, g] : stale_) enforced.insert(g->mnt_ns()), cgroups.insert(g->cgroup_id());
  handler_->keep_backstop_entries(enforced, cgroups);
  std::erase_if(orphan_hits_, [&](const auto& h) {
    return h.cgroup != 0 ? !cgroups.contains(h.cgroup) : !enforced.contains(h.key.mnt_ns);
  });
  if (kept_link_) { // a kept backstop we could not take over: no kept cache needs it now
    kept_link_.reset();
    if (!backstop_ && options_.on_release) {
      for (const auto& suffix : ExecBackstop::link_suffixes())
        options_.on_release(std::string(kBackstopId) + suffix);
    }
  }
  return n;
}

Enforcement FanotifyEnforcer::enforcement(const std::string& id) const {
  return prover_ ? prover_->enforcement(id) : Enforcement{};
}

Counters FanotifyEnforcer::counters() const {
  Counters c;
  c.events = stats_->events;
  c.denied = stats_->denied;
  c.errors_allowed = stats_->errors_allowed;
  c.errors_denied = stats_->errors_denied;
  c.timeouts_allowed = stats_->timeouts_allowed;
  c.timeouts_denied = stats_->timeouts_denied;
  c.leftovers = stats_->leftovers;
  c.decision_latency = stats_->decision_latency.snapshot();
  c.cached = stats_->cached;
  c.interpreters = stats_->interpreters;
  c.write_unknown = stats_->write_unknown;
  if (backstop_) {
    const auto b = backstop_->counters();
    c.backstop = true;
    c.backstop_kills = b.kills;
    c.backstop_audits = b.audits;
    c.backstop_dropped = b.dropped;
    c.backstop_reader_failed = b.reader_failed;
    c.backstop_kill_failures = b.kill_failures;
  }
  c.cache_marks = stats_->cache_marks;
  std::lock_guard lock(mu_);
  c.enforced = groups_.size();
  c.groups = groups_.size() + stale_.size();
  c.contained = contained_.size();
  return c;
}

} // namespace corral::enforce
