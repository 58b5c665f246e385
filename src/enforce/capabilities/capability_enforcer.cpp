#include "enforce/capabilities/capability_enforcer.h"

#include <sys/stat.h>

#include "enforce/backstop/exec_backstop.h"
#include "enforce/capabilities/verdicts.h"
#include "enforce/fanotify/alert_builder.h"
#include "policy/decide.h"
#include "policy/names.h"

namespace corral::enforce {
namespace {

using capabilities::Action;
using capabilities::Mechanism;

std::string cap_name(int cap) {
  const auto names = policy::capability_names();
  if (cap < 0 || static_cast<size_t>(cap) >= names.size()) return std::to_string(cap);
  std::string up = "CAP_";
  for (const char ch : names[static_cast<size_t>(cap)])
    up += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
  return up; // as KubeArmor's alerts name it: CAP_NET_RAW
}

// KubeArmor's BPF LSM alerts say "lsm=SECURITY_CAPABLE CAP_NET_RAW"; the others name their hook.
std::string data_of(Mechanism m) {
  switch (m) {
  case Mechanism::Lsm: return "lsm=SECURITY_CAPABLE";
  case Mechanism::FmodRet: return "fmod_ret=security_capable";
  case Mechanism::Tracepoint: break;
  }
  return "tracepoint=cap_capable";
}

// Appends a note to a rule's message.
void note(std::string& message, const std::string& what) {
  message += (message.empty() ? "" : " ") + std::string("[") + what + "]";
}

// Whether /proc/<pid>/exe is still the file the program saw (dev, ino): by the time the
// report is read the process may have exec'd another program (runc init becoming the
// exec'd command) or be gone (killed, or short-lived).
bool same_program(const capabilities::CapTracer::Use& u) {
  struct stat st {};
  if (::stat(("/proc/" + std::to_string(u.host_pid) + "/exe").c_str(), &st) != 0) return false;
  return kernel_dev(st.st_dev) == u.dev && st.st_ino == u.ino;
}

// The process behind a use: from /proc while it still runs the same program, else from what
// the program recorded then.
fanotify::Actor actor_of(const capabilities::CapTracer::Use& u, const std::string& root) {
  if (same_program(u)) {
    auto who = fanotify::read_actor(static_cast<int>(u.host_pid), root);
    if (!who.exe.empty() && who.tgid == static_cast<int>(u.host_pid)) {
      if (who.parent_exe.empty()) who.parent_exe = u.parent_exe; // the parent is gone
      return who;
    }
  }
  fanotify::Actor who;
  who.tid = who.tgid = static_cast<int>(u.host_pid);
  who.ppid = static_cast<int>(u.host_ppid);
  who.ns_pid = static_cast<int>(u.pid);
  who.ns_ppid = static_cast<int>(u.ppid);
  who.uid = u.uid;
  // A file that is the root of its own mount (runc's bind-mounted copy of itself) has no
  // path inside it: named by its command name then.
  who.exe = u.exe.empty() ? "[" + u.comm + "]" : u.exe;
  who.args = u.args;
  who.parent_exe = u.parent_exe;
  return who;
}

} // namespace

Result<std::unique_ptr<CapabilityEnforcer>> CapabilityEnforcer::make(Options o) {
  std::unique_ptr<CapabilityEnforcer> e(new CapabilityEnforcer(std::move(o)));
  capabilities::CapTracer::Options to;
  to.kill_blocked = e->o_.kill_blocked;
  to.on_use = [p = e.get()](const capabilities::CapTracer::Use& u) { p->on_use(u); };
  auto t = capabilities::CapTracer::make(std::move(to));
  if (!t) return t.error();
  e->tracer_ = std::move(*t);
  return e;
}

CapabilityEnforcer::~CapabilityEnforcer() {
  tracer_.reset(); // its reader thread calls on_use, which reads the members below
}

Result<void> CapabilityEnforcer::enforce(const workload::Workload& w,
                                         std::shared_ptr<const policy::RuleSet> rules) {
  if (!rules || rules->traits(policy::Category::Capabilities).rules == 0) {
    release(w.id); // nothing to judge: no map entry, so no cost and no noise
    return {};
  }
  if (w.cgroup_id == 0) {
    return Error{"capability rules for " + w.name + ": its cgroup v2 id is unknown",
                 "the capability programs find workloads by cgroup v2", 0};
  }
  const auto v = capabilities::compute_verdicts(*rules);
  std::lock_guard lock(mu_);
  if (const auto old = by_id_.find(w.id); old != by_id_.end() && old->second.w.cgroup_id != 0)
    tracer_->erase_sources(old->second.w.cgroup_id);
  for (const auto& s : v.by_source) {
    struct stat st {};
    if (::stat((w.root_path + s.path).c_str(), &st) != 0) continue; // not in this image
    if (auto r =
            tracer_->set_source(w.cgroup_id, kernel_dev(st.st_dev), st.st_ino, s.cap, s.action);
        !r)
      return r;
  }
  if (auto r = tracer_->set_workload(w.cgroup_id, v.actions, v.sourced); !r) return r;
  by_id_[w.id] = Entry{w, std::move(rules)};
  by_cgroup_[w.cgroup_id] = w.id;
  return {};
}

void CapabilityEnforcer::release(const std::string& id) {
  std::lock_guard lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  const uint64_t cg = it->second.w.cgroup_id;
  tracer_->erase_workload(cg);
  tracer_->erase_sources(cg);
  by_cgroup_.erase(cg);
  by_id_.erase(it);
}

Counters CapabilityEnforcer::counters() const {
  const auto c = tracer_->counters();
  Counters out;
  out.events = c.reported + c.suppressed;
  out.denied = c.denied + c.killed;
  const auto cov = coverage(policy::Category::Capabilities);
  auto& x = out.extras;
  x["capabilities"] = std::string(to_string(cov.level)) + " by " + cov.how +
                      (o_.kill_blocked && tracer_->mechanism() == Mechanism::Tracepoint
                           ? ", killing on a blocked use"
                           : "") +
                      (c.reader_failed ? " (its reports cannot be read)" : "");
  x["capability_uses_reported"] = std::to_string(c.reported);
  x["capability_uses_suppressed"] = std::to_string(c.suppressed); // rate limit
  x["capability_reports_dropped"] = std::to_string(c.dropped);    // ring buffer full
  x["capability_noaudit_probes_skipped"] = std::to_string(c.noaudit);
  x["capability_kills"] = std::to_string(c.killed);
  x["capability_kill_failures"] = std::to_string(c.kill_failed);
  x["capability_checks_denied"] = std::to_string(c.denied);
  std::lock_guard lock(mu_);
  out.enforced = by_id_.size();
  x["capability_workloads"] = std::to_string(by_id_.size());
  return out;
}

Coverage CapabilityEnforcer::coverage(policy::Category c) const {
  if (c != policy::Category::Capabilities) return {};
  const Mechanism m = tracer_->mechanism();
  Coverage cov;
  cov.how = std::string(capabilities::to_string(m));
  if (m != Mechanism::Tracepoint) {
    cov.level = Coverage::Level::Enforced;
    return cov;
  }
  cov.level = Coverage::Level::Audited;
  cov.reason = "this kernel lets no BPF program fail a capability check (" + tracer_->refused() +
               "); each use is alerted" +
               (o_.kill_blocked ? ", and a process using a blocked capability is killed "
                                  "(--kill-on-blocked-capability; the call that used it completes)"
                                : "; corrald --kill-on-blocked-capability kills a process that "
                                  "uses a blocked one");
  if (!tracer_->noaudit_known())
    cov.reason += "; kernel symbols are hidden, so the kernel's noaudit probes alert too";
  return cov;
}

void CapabilityEnforcer::on_use(const capabilities::CapTracer::Use& u) {
  Entry e;
  {
    std::lock_guard lock(mu_);
    const auto id = by_cgroup_.find(u.cgroup);
    if (id == by_cgroup_.end()) return; // released meanwhile
    e = by_id_.at(id->second);
  }
  const auto who = actor_of(u, e.w.root_path);
  const std::string name(policy::capability_names().size() > static_cast<size_t>(u.cap)
                             ? policy::capability_names()[static_cast<size_t>(u.cap)]
                             : "");
  const auto v = policy::decide(*e.rules, {policy::Category::Capabilities, name, who.exe});
  const std::string resource = cap_name(u.cap);
  const bool passed = !u.denied && !u.killed;
  auto a = fanotify::make_alert(e.w, who, v, {policy::Category::Capabilities, resource, 0, passed});
  a.process_name = who.exe;
  a.operation = "Capabilities";
  a.resource = resource;
  const Mechanism m = tracer_->mechanism();
  a.data = data_of(m) + " " + resource;
  a.enforcer = m == Mechanism::Tracepoint ? "eBPF Monitor" : "BPFLSM";
  // The kernel's verdict (the program's action) decides what happened; the rules read now
  // name the policy (they differ only if the rules changed since).
  if (u.action == Action::Block) {
    if (u.denied) {
      a.action = "Block";
      a.result = "Permission denied";
    } else if (u.killed) {
      a.action = "Block";
      a.result = "Killed";
      note(a.message, "the process was killed (--kill-on-blocked-capability); the call that "
                      "used " +
                          resource + " completed");
    } else {
      a.action = "Audit (Block)";
      a.result = "Passed";
      note(a.message, std::string("audited only: this node cannot fail a capability check, "
                                  "the operation passed") +
                          (u.kill_failed ? "; killing the process failed" : ""));
    }
  } else {
    a.action = v.action.empty() ? "Audit" : std::string(v.action);
    a.result = "Passed";
  }
  if (u.suppressed > 0)
    note(a.message, std::to_string(u.suppressed) + " more uses by this process since its "
                                                   "previous alert");
  if (o_.sink) o_.sink(std::move(a));
}

} // namespace corral::enforce
