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
  auto group = fanotify::Group::make(w, std::move(rules), options_.log);
  if (!group) return group.error();
  if (auto added = responder_->add(*group); !added) return added.error();
  auto& slot = groups_[w.id];
  if (slot) responder_->remove(slot); // the old group closes when its last event is answered
  slot = std::move(*group);
  return {};
}

void FanotifyEnforcer::release(const std::string& id) {
  std::lock_guard lock(mu_);
  const auto it = groups_.find(id);
  if (it == groups_.end()) return;
  responder_->remove(it->second);
  groups_.erase(it);
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
