#include "agent/activity.h"

#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>

#include "core/strings.h"
#include "enforce/fanotify/workload_facts.h"
#include "events/format.h"
#include "policy/network.h"
#include "proc/proc.h"

namespace corral::agent {
namespace {

// argv[1..] of a space-joined argv.
std::string args_after_argv0(const std::string& args) {
  const auto space = args.find(' ');
  return space == std::string::npos ? std::string() : args.substr(space + 1);
}

// The program an exec ran, inside the workload's root, as policies name it: the path exec
// was given (a script's own path, not its interpreter's, as POLICY.md judges scripts);
// a relative one is taken from the process's working directory, else from /proc/<pid>/exe.
std::string program_of(int pid, const std::string& given, const std::string& root_prefix) {
  if (given.starts_with("/")) return given;
  if (const auto cwd = proc::read_link(proc::proc_path(pid, "cwd")); cwd && !given.empty()) {
    std::string dir = proc::strip_root(*cwd, root_prefix);
    std::string_view rest = given;
    while (rest.starts_with("./")) rest.remove_prefix(2);
    return (dir.ends_with("/") ? dir : dir + "/") + std::string(rest);
  }
  if (const auto exe = proc::read_program(pid); exe && !exe->ends_with(" (deleted)"))
    return proc::strip_root(*exe, root_prefix);
  return given;
}

// O_* of an open, as KubeArmor's Data shows them: "O_RDONLY", "O_WRONLY|O_CREAT|O_TRUNC".
std::string open_flags(int flags) {
  std::string out = (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                    : (flags & O_ACCMODE) == O_RDWR ? "O_RDWR"
                                                    : "O_RDONLY";
  const std::pair<int, const char*> more[] = {{O_CREAT, "O_CREAT"},
                                              {O_TRUNC, "O_TRUNC"},
                                              {O_APPEND, "O_APPEND"},
                                              {O_EXCL, "O_EXCL"},
                                              {O_DIRECTORY, "O_DIRECTORY"}};
  for (const auto& [bit, name] : more) {
    if ((flags & bit) != 0) out += std::string("|") + name;
  }
  return out;
}

uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

} // namespace

std::optional<unsigned> parse_visibility(const std::string& value) {
  unsigned mask = 0;
  for (const auto& item : split(to_lower(value), ',')) {
    const auto t = trim(item);
    if (t == "process") {
      mask |= kSeeProcess;
    } else if (t == "file") {
      mask |= kSeeFile;
    } else if (t == "network") {
      mask |= kSeeNetwork;
    } else if (t == "capabilities") {
      mask |= kSeeCapabilities;
    } else if (t != "none" && !t.empty()) {
      return std::nullopt;
    }
  }
  return mask;
}

std::string visibility_text(unsigned mask) {
  std::string out;
  const std::pair<unsigned, const char*> names[] = {{kSeeProcess, "process"},
                                                    {kSeeFile, "file"},
                                                    {kSeeNetwork, "network"},
                                                    {kSeeCapabilities, "capabilities"}};
  for (const auto& [bit, name] : names) {
    if ((mask & bit) != 0) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out.empty() ? "none" : out;
}

Activity::Activity(Options options) : options_(std::move(options)) {}

void Activity::set_workloads(const std::vector<WatchedWorkload>& watched) {
  std::unordered_map<uint64_t, std::shared_ptr<const Watched>> by_cgroup, by_pidns;
  std::map<uint64_t, unsigned> kernel;
  for (const auto& v : watched) {
    if (v.w.init_pid == 0) continue;
    auto w = std::make_shared<Watched>();
    w->w = v.w;
    w->visibility = v.visibility;
    w->root_prefix = proc::read_link(v.w.root_path).value_or("/");
    w->labels = v.w.labels_text();
    if (v.w.cgroup_id != 0) {
      by_cgroup[v.w.cgroup_id] = w;
      const unsigned k = v.visibility & (kSeeFile | kSeeNetwork);
      if (k != 0) kernel[v.w.cgroup_id] = k;
    }
    if (v.w.pidns_inode != 0) by_pidns[v.w.pidns_inode] = w;
  }
  std::map<uint64_t, unsigned> old;
  {
    std::lock_guard lock(mu_);
    by_cgroup_ = std::move(by_cgroup);
    by_pidns_ = std::move(by_pidns);
    // Forget workloads that are gone; keep the others' records.
    std::erase_if(activity_, [&](const auto& kv) {
      return std::none_of(watched.begin(), watched.end(),
                          [&](const WatchedWorkload& v) { return v.w.id == kv.first; });
    });
    for (const auto& v : watched) {
      auto& a = activity_[v.w.id];
      if (a.since == 0) a.since = events::now_micros() / 1000000;
      a.files_recorded |= (v.visibility & kSeeFile) != 0;
      a.network_recorded |= (v.visibility & kSeeNetwork) != 0;
    }
    old.swap(kernel_);
    kernel_ = kernel;
  }
  if (!options_.kernel_visibility) return;
  for (const auto& [cgroup, mask] : kernel) {
    const auto it = old.find(cgroup);
    if (it == old.end() || it->second != mask) options_.kernel_visibility(cgroup, mask);
  }
  for (const auto& [cgroup, mask] : old) {
    if (kernel.count(cgroup) == 0) options_.kernel_visibility(cgroup, 0);
  }
}

std::shared_ptr<const Activity::Watched> Activity::find_locked(const monitor::Process& p) const {
  if (const auto it = by_cgroup_.find(p.cgroup); it != by_cgroup_.end()) return it->second;
  // A process that moved to a cgroup of its own inside the workload still shares its pid
  // namespace (the kernel's file and network filter knows cgroups only).
  if (const auto it = by_pidns_.find(p.pidns); it != by_pidns_.end()) return it->second;
  return nullptr;
}

void Activity::record_locked(const Watched& w, std::map<std::string, Seen> WorkloadActivity::*kind,
                             const std::string& key, const std::string& protocol, int64_t now) {
  auto& a = activity_[w.w.id];
  auto& items = a.*kind;
  auto it = items.find(key);
  if (it == items.end()) {
    if (items.size() >= options_.max_items) {
      ++a.not_kept;
      return;
    }
    it = items.emplace(key, Seen{0, now, now, protocol}).first;
  }
  ++it->second.count;
  it->second.last = now;
}

events::Alert Activity::log_of(const Watched* w, const monitor::Process& p,
                               int64_t now_micros) const {
  events::Alert a;
  a.timestamp = now_micros / 1000000;
  a.updated_time = events::rfc3339_micros(now_micros);
  a.cluster_name = options_.cluster_name;
  a.host_name = options_.host_name;
  if (w != nullptr) w->w.identify(a, w->labels);
  a.type = w != nullptr ? "ContainerLog" : "HostLog";
  a.host_pid = p.tgid;
  a.host_ppid = p.ppid;
  a.pid = p.nspid;
  a.uid = static_cast<int32_t>(p.uid);
  a.enforcer = "eBPF Monitor";
  a.result = "Passed";
  return a;
}

void Activity::on_event(const monitor::Event& e) {
  if (e.kind != monitor::Kind::Exec && e.kind != monitor::Kind::File &&
      e.kind != monitor::Kind::Network)
    return;
  const monitor::Process& p = e.process;
  std::shared_ptr<const Watched> w;
  {
    std::lock_guard lock(mu_);
    w = find_locked(p);
  }
  const unsigned bit = e.kind == monitor::Kind::Exec   ? kSeeProcess
                       : e.kind == monitor::Kind::File ? kSeeFile
                                                       : kSeeNetwork;
  const bool log = ((w ? w->visibility : options_.host_visibility) & bit) != 0;
  if (!w && !log) return;
  const std::string root = w ? w->root_prefix : "/";
  const int64_t now = events::now_micros();
  events::Alert a;
  if (e.kind == monitor::Kind::Exec) {
    const std::string program = program_of(p.tgid, p.exe, root);
    if (w) {
      std::lock_guard lock(mu_);
      record_locked(*w, &WorkloadActivity::processes, program, "", now / 1000000);
    }
    if (!log || options_.hub == nullptr) return;
    a = log_of(w.get(), p, now);
    // The caller: the process that started this one (its parent then), as the tree knows it.
    const int parent = p.forked_by != 0 ? p.forked_by : p.ppid;
    if (const auto pp = options_.process ? options_.process(parent) : std::nullopt) {
      a.parent_process_name = pp->exe.starts_with("/") ? proc::strip_root(pp->exe, root) : pp->exe;
      a.source = a.parent_process_name;
      if (const auto args = args_after_argv0(pp->args); !args.empty()) a.source += " " + args;
      if (pp->pidns == p.pidns) a.ppid = pp->nspid;
    }
    a.process_name = program;
    a.operation = "Process";
    a.resource = p.exe;
    if (const auto args = args_after_argv0(p.args); !args.empty()) a.resource += " " + args;
    a.data = "syscall=SYS_EXECVE";
    a.tty = p.tty;
  } else if (e.file) {
    const auto& f = *e.file;
    // A relative path: the file opened, as its new fd names it (else as given).
    std::string path = f.path;
    if (!path.starts_with("/") && f.result >= 0) {
      if (const auto l = proc::read_link(proc::proc_path(e.tid, "fd/" + std::to_string(f.result))))
        path = proc::strip_root(*l, root);
    }
    if (w) {
      std::lock_guard lock(mu_);
      record_locked(*w, &WorkloadActivity::files, path, "", now / 1000000);
    }
    if (!log || options_.hub == nullptr) return;
    a = log_of(w.get(), p, now);
    a.operation = "File";
    a.resource = path;
    a.data = "syscall=SYS_OPEN flags=" + open_flags(f.flags);
    if (f.result < 0) a.result = std::strerror(-f.result);
  } else if (e.net) {
    const auto& n = *e.net;
    const char* op = n.op == monitor::NetAccess::Op::Connect ? "connect"
                     : n.op == monitor::NetAccess::Op::Bind  ? "bind"
                                                             : "accept";
    std::string protocols;
    for (const auto name :
         policy::socket_names(policy::socket_name_set(n.family, n.type, n.protocol)))
      if (!name.empty()) protocols += (protocols.empty() ? "" : ",") + std::string(name);
    const std::string peer = n.address.empty() ? std::string()
                             : n.address.find(':') != std::string::npos
                                 ? "[" + n.address + "]:" + std::to_string(n.port)
                                 : n.address + ":" + std::to_string(n.port);
    if (w) {
      std::lock_guard lock(mu_);
      record_locked(*w, &WorkloadActivity::network,
                    (protocols.empty() ? std::string("other") : protocols) + " " + op +
                        (peer.empty() ? "" : " " + peer),
                    protocols, now / 1000000);
    }
    if (!log || options_.hub == nullptr) return;
    a = log_of(w.get(), p, now);
    a.operation = "Network";
    a.resource =
        policy::socket_resource(n.family, n.type, n.protocol) +
        (peer.empty()
             ? ""
             : std::string(n.op == monitor::NetAccess::Op::Bind ? " localaddr=" : " remoteaddr=") +
                   peer);
    a.data = std::string("syscall=SYS_") + (n.op == monitor::NetAccess::Op::Connect ? "CONNECT"
                                            : n.op == monitor::NetAccess::Op::Bind  ? "BIND"
                                                                                    : "ACCEPT");
    if (n.result < 0) a.result = std::strerror(-n.result);
  } else {
    return;
  }
  if (e.kind != monitor::Kind::Exec) {
    a.process_name = p.exe.starts_with("/") ? proc::strip_root(p.exe, root) : p.exe;
    a.source = a.process_name;
    if (const auto args = args_after_argv0(p.args); !args.empty()) a.source += " " + args;
    a.tty = p.tty;
    if (const auto pp = options_.process ? options_.process(p.ppid) : std::nullopt) {
      a.parent_process_name = pp->exe.starts_with("/") ? proc::strip_root(pp->exe, root) : pp->exe;
      if (pp->pidns == p.pidns) a.ppid = pp->nspid;
    }
  }
  // The working directory of an exec (file and network logs go without: a readlink for each
  // of them would halve the pipeline's rate).
  if (e.kind == monitor::Kind::Exec) {
    if (const auto cwd = proc::read_link(proc::proc_path(p.tgid, "cwd")))
      a.cwd = proc::strip_root(*cwd, root);
  }
  if (options_.counts != nullptr) options_.counts->count(a);
  if (options_.tee) options_.tee(a);
  options_.hub->publish(std::move(a));
}

std::optional<WorkloadActivity> Activity::activity(const std::string& workload_id,
                                                   int64_t since) const {
  std::lock_guard lock(mu_);
  const auto it = activity_.find(workload_id);
  if (it == activity_.end()) return std::nullopt;
  WorkloadActivity out = it->second;
  if (since > 0) {
    for (auto* items : {&out.processes, &out.files, &out.network})
      std::erase_if(*items, [since](const auto& kv) { return kv.second.last < since; });
  }
  return out;
}

namespace {

// Socket inode → protocol, from the workload's network namespace (/proc/<pid>/net/*).
std::map<uint64_t, std::string> socket_protocols(int pid) {
  std::map<uint64_t, std::string> out;
  const std::pair<const char*, const char*> tables[] = {
      {"tcp", "tcp"},  {"tcp6", "tcp"},  {"udp", "udp"},     {"udp6", "udp"},    {"raw", "raw"},
      {"raw6", "raw"}, {"icmp", "icmp"}, {"udplite", "udp"}, {"udplite6", "udp"}};
  for (const auto& [file, protocol] : tables) {
    const auto text =
        proc::read_proc_file(proc::proc_path(pid, std::string("net/") + file), 1 << 22);
    if (!text) continue;
    bool header = true;
    for (const auto& line : split(*text, '\n')) {
      if (header) {
        header = false;
        continue;
      }
      std::vector<std::string> fields;
      for (const auto& f : split(trim(line), ' '))
        if (!f.empty()) fields.push_back(f);
      if (fields.size() > 9) out[std::strtoull(fields[9].c_str(), nullptr, 10)] = protocol;
    }
  }
  return out;
}

void seen_now(std::map<std::string, Seen>& items, const std::string& key,
              const std::string& protocol, int64_t now) {
  auto [it, added] = items.emplace(key, Seen{0, now, now, protocol});
  it->second.last = std::max(it->second.last, now);
}

} // namespace

void add_running(const workload::Workload& w, WorkloadActivity& a) {
  if (w.init_pid == 0 || w.pidns_inode == 0) return;
  const std::string root = proc::read_link(w.root_path).value_or("/");
  const int64_t now = events::now_micros() / 1000000;
  const auto sockets = socket_protocols(w.init_pid);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::stoi(name);
    if (inode_of(proc::proc_path(pid, "ns/pid")) != w.pidns_inode) continue;
    const auto exe = proc::read_program(pid);
    if (!exe) continue;
    seen_now(a.processes, proc::strip_root(*exe, root), "", now);
    // Mapped files: the libraries it loaded (read by the dynamic loader at its start).
    if (const auto maps = proc::read_proc_file(proc::proc_path(pid, "maps"), 1 << 22)) {
      for (const auto& line : split(*maps, '\n')) {
        const auto slash = line.find('/');
        if (slash == std::string::npos || line.ends_with(" (deleted)")) continue;
        seen_now(a.files, proc::strip_root(line.substr(slash), root), "", now);
      }
    }
    // Open files and sockets.
    for (const auto& fd : std::filesystem::directory_iterator(proc::proc_path(pid, "fd"), ec)) {
      const auto target = proc::read_link(fd.path());
      if (!target) continue;
      if (target->starts_with("socket:[")) {
        const auto inode = std::strtoull(target->c_str() + 8, nullptr, 10);
        if (const auto s = sockets.find(inode); s != sockets.end())
          seen_now(a.network, s->second + " open", s->second, now);
      } else if (target->starts_with("/") && !target->ends_with(" (deleted)")) {
        seen_now(a.files, proc::strip_root(*target, root), "", now);
      }
    }
  }
}

void mark_changed(const workload::Workload& w, WorkloadActivity& a) {
  const auto start =
      w.init_pid != 0 ? enforce::fanotify::process_start_ns(w.init_pid) : std::nullopt;
  if (!start || w.root_path.empty()) return;
  for (auto& [path, seen] : a.processes) {
    struct stat st {};
    if (!path.starts_with("/") || ::stat((w.root_path + path).c_str(), &st) != 0) continue;
    seen.changed = enforce::fanotify::ctime_ns(st.st_ctim.tv_sec, st.st_ctim.tv_nsec) > *start;
  }
}

} // namespace corral::agent
