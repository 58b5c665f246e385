#include "enforce/fanotify/alert_builder.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <sys/fanotify.h>

#include "core/strings.h"
#include "enforce/fanotify/proc_reader.h"

namespace corral::enforce::fanotify {
namespace {

std::string exe_of(int pid, const std::string& root_prefix) {
  const auto exe = read_program(pid);
  return exe ? strip_root(*exe, root_prefix) : std::string();
}

// RFC3339 UTC with microseconds, as KubeArmor's UpdatedTime.
std::string rfc3339(std::chrono::system_clock::time_point t, int64_t* unix_seconds) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(us / 1000000);
  *unix_seconds = secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(us % 1000000));
  return buf;
}

Recall& recall() {
  static Recall r;
  return r;
}

} // namespace

void set_recall(Recall r) {
  recall() = std::move(r);
}

std::optional<Remembered> remembered(int pid) {
  return recall() ? recall()(pid) : std::nullopt;
}

Actor read_actor(int tid, const std::string& root_prefix) {
  Actor a;
  a.tid = tid;
  a.tgid = tid;
  if (const auto st = read_status(tid)) {
    a.tgid = st->tgid;
    a.ppid = st->ppid;
    a.uid = st->uid;
    a.ns_pid = st->ns_pid;
    const auto leader = a.tgid == tid ? st : read_status(a.tgid);
    if (leader) a.ns_pid = leader->ns_pid;
    // The parent's pid in the same namespace, if it lives there (not the runtime's shim).
    if (const auto parent = read_status(a.ppid); parent && parent->ns_depth == st->ns_depth) {
      a.ns_ppid = parent->ns_pid;
      // Its program only then: a shim's or runc's host path names nothing in the container.
      a.parent_exe = exe_of(a.ppid, root_prefix);
    }
  }
  read_process(a.tgid, root_prefix, a);
  return a;
}

void read_process(int pid, const std::string& root_prefix, Actor& who) {
  who.exe = exe_of(pid, root_prefix);
  who.args = read_args(pid);
  who.tty = read_tty(pid);
  // Gone (or exiting: its exe link may outlive its command line).
  if ((who.exe.empty() || who.args.empty()) && recall()) {
    if (auto r = recall()(pid); r && (who.exe.empty() || r->exe == who.exe)) {
      who.exe = std::move(r->exe);
      who.args = std::move(r->args);
      if (who.tty.empty()) who.tty = std::move(r->tty);
    }
  }
  if (const auto cwd = read_link("/proc/" + std::to_string(pid) + "/cwd"))
    who.cwd = strip_root(*cwd, root_prefix);
}

events::Alert make_alert(const workload::Workload& w, const Actor& who, const policy::Verdict& v,
                         const AlertEvent& e) {
  events::Alert a;
  a.updated_time = rfc3339(std::chrono::system_clock::now(), &a.timestamp);
  w.identify(a, w.labels_text());
  a.host_pid = who.tgid;
  a.host_ppid = who.ppid;
  a.pid = who.ns_pid;
  a.ppid = who.ns_ppid;
  a.uid = static_cast<int32_t>(who.uid);
  const bool exec = e.category == policy::Category::Process;
  a.process_name = exec ? std::string(e.resource) : who.exe;
  a.parent_process_name = exec ? who.exe : who.parent_exe;
  a.source = who.args.empty() ? who.exe : who.exe + " " + who.args;
  a.policy_name = std::string(v.policy_name());
  if (v.rule != nullptr) {
    const auto& r = *v.rule->rule;
    a.severity = std::to_string(r.severity);
    a.tags = join(r.tags, ",");
    a.atags = r.tags;
    a.message = r.message;
  }
  a.type = w.runtime == "host" ? "MatchedHostPolicy" : "MatchedPolicy";
  a.operation = exec ? "Process" : "File";
  a.resource = std::string(e.resource);
  a.data = (e.mask & FAN_OPEN_EXEC_PERM) ? "fanotify=FAN_OPEN_EXEC_PERM" : "fanotify=FAN_OPEN_PERM";
  a.enforcer = "fanotify";
  a.action = std::string(v.action);
  a.result = e.allowed ? "Passed" : "Permission denied";
  a.cwd = who.cwd;
  a.tty = who.tty;
  return a;
}

} // namespace corral::enforce::fanotify
