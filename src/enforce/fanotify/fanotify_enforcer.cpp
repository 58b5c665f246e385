#include "enforce/fanotify/fanotify_enforcer.h"

#include <fcntl.h>
#include <sys/fanotify.h>

#include "core/fd.h"
#include "enforce/fanotify/event_handler.h"
#include "enforce/fanotify/group.h"
#include "enforce/fanotify/responder.h"

namespace corral::enforce {

FanotifyEnforcer::FanotifyEnforcer(Options options)
    : options_(std::move(options)), stats_(std::make_unique<fanotify::Stats>()) {}

FanotifyEnforcer::~FanotifyEnforcer() {
  // Join the threads before the groups go: closing a group fd allows its pending events.
  responder_.reset();
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
  fanotify::HandlerOptions h{e->options_.sink, e->options_.log, e->options_.cache,
                             e->options_.max_cached_per_workload, e->options_.on_event};
  e->handler_ = std::make_unique<fanotify::EventHandler>(std::move(h), *e->stats_);
  auto responder = fanotify::Responder::make(
      e->options_.reply_bound,
      [handler = e->handler_.get()](fanotify::Group& g, fanotify::PendingEvent& ev) {
        handler->handle(g, ev);
      },
      *e->stats_, e->options_.log);
  if (!responder) return responder.error();
  e->responder_ = std::move(*responder);
  return e;
}

Result<void> FanotifyEnforcer::enforce(const workload::Workload& w,
                                       std::shared_ptr<const policy::RuleSet> rules) {
  if (!rules || fanotify::event_mask(*rules) == 0) {
    release(w.id);
    return {};
  }
  std::lock_guard lock(mu_);
  const std::string meta = std::to_string(w.init_pid) + " " + rules->fingerprint();
  auto adopted = adopted_.extract(w.id);
  const bool reuse = !adopted.empty() && adopted.mapped().meta == meta;
  auto group = reuse ? fanotify::Group::adopt(std::move(adopted.mapped().fd), w, rules)
                     : fanotify::Group::make(w, rules, options_.log);
  if (!group) return group.error();
  if (auto added = responder_->add(*group); !added) return added.error();
  auto& slot = groups_[w.id];
  if (slot) responder_->remove(slot); // the old group closes when its last event is answered
  slot = std::move(*group);
  drop_stale_locked(w.id);
  if (!adopted.empty() && !reuse) {
    // Built for other rules or another task: its cache may be wrong, so the new group
    // decides from now on, but what queued on it meanwhile is read with the new rules.
    if (auto old = fanotify::Group::adopt(std::move(adopted.mapped().fd), w, rules);
        old && responder_->add(*old)) {
      stale_[w.id] = std::move(*old);
    }
  }
  if (!reuse && options_.on_group) options_.on_group(w.id, slot->fd(), meta);
  return {};
}

void FanotifyEnforcer::drop_stale_locked(const std::string& id) {
  if (const auto it = stale_.find(id); it != stale_.end()) {
    responder_->remove(it->second);
    stale_.erase(it);
  }
}

void FanotifyEnforcer::release(const std::string& id) {
  std::lock_guard lock(mu_);
  drop_stale_locked(id);
  const auto it = groups_.find(id);
  if (it == groups_.end()) return;
  // The holder's copy first: the group ends only when no process holds it any more.
  if (options_.on_release) options_.on_release(id);
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
  return n;
}

Counters FanotifyEnforcer::counters() const {
  Counters c;
  c.events = stats_->events;
  c.denied = stats_->denied;
  c.errors_allowed = stats_->errors_allowed;
  c.timeouts_allowed = stats_->timeouts_allowed;
  c.cached = stats_->cached;
  c.interpreters = stats_->interpreters;
  c.write_unknown = stats_->write_unknown;
  std::lock_guard lock(mu_);
  c.enforced = groups_.size();
  return c;
}

} // namespace corral::enforce
