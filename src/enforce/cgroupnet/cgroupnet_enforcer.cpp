#include "enforce/cgroupnet/cgroupnet_enforcer.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/fd.h"
#include "enforce/cgroupnet/cgroup_v2.h"
#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/proc_reader.h"
#include "policy/network.h"

namespace corral::enforce {
namespace {

using cgroupnet::ExeKey;

ExeKey key_of(const struct stat& st) {
  // The kernel's s_dev encoding (major << 20 | minor), as the exec tracepoint reads it.
  return ExeKey{(static_cast<uint64_t>(major(st.st_dev)) << 20) | minor(st.st_dev), st.st_ino};
}

std::optional<ExeKey> exe_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return key_of(st);
}

// The file at `path` inside the root `root_fd` (symlinks resolved there, never escaping it:
// RESOLVE_IN_ROOT, Linux 5.6).
std::optional<ExeKey> exe_key_in(int root_fd, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT;
  Fd fd(static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how)));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return std::nullopt;
  return key_of(st);
}

// Every fromSource path of the workload's network rules (literal and canonical).
std::set<std::string> source_paths(const policy::RuleSet& rs) {
  std::set<std::string> out;
  for (const auto& [name, rules] : rs.names(policy::Category::Network))
    for (const auto& c : rules) out.insert(c.sources.begin(), c.sources.end());
  return out;
}

} // namespace

std::unique_ptr<CgroupNetEnforcer> CgroupNetEnforcer::make(Options o) {
  std::unique_ptr<CgroupNetEnforcer> e(new CgroupNetEnforcer(std::move(o)));
  uint32_t prog_id = 0;
  e->load_state(&prog_id);
  std::string why_not;
  auto p = cgroupnet::NetPrograms::make(prog_id, &why_not, std::move(e->o_.kept_links));
  if (!p) {
    e->error_ = p.error().to_string();
    return e;
  }
  if (prog_id != 0 && !(*p)->adopted()) {
    if (e->o_.log) e->o_.log("cgroup-bpf: not taking over the previous agent's " + why_not);
    e->kept_.clear();
  }
  // Proven, not assumed: the program must attach to a cgroup here.
  auto mount = cgroupnet::cgroup2_mount();
  auto probe = mount ? (*p)->probe_attach(*mount) : Result<void>(mount.error());
  if (!probe) {
    e->error_ = probe.error().to_string();
    return e;
  }
  // Programs ids the previous agent gave out stay: the kernel's tables use them.
  for (const auto& [key, id] : (*p)->exes()) e->exe_ids_[key] = {id, 0};
  auto* raw = e.get();
  if (auto r = (*p)->read_events([raw](const cgroupnet::SocketEvent& ev) { raw->on_event(ev); });
      !r) {
    e->error_ = r.error().to_string();
    return e;
  }
  if ((*p)->adopted() && e->o_.log)
    e->o_.log("cgroup-bpf: took over the socket program left attached to " +
              std::to_string(e->kept_.size()) + " cgroups" +
              ((*p)->kept_links() ? ", and its tracepoints from the fd holder" : ""));
  e->programs_ = std::move(*p);
  e->save_state();
  e->rehand();
  return e;
}

void CgroupNetEnforcer::rehand() {
  if (!programs_ || !o_.on_link) return;
  for (const auto& [id, fd] : programs_->links()) o_.on_link(id, fd);
}

CgroupNetEnforcer::~CgroupNetEnforcer() {
  if (!programs_) return;
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, s] : by_id_) ids.push_back(id);
  }
  for (const auto& id : ids) release(id);
  // Now, not as a member: its reader thread calls on_event, which needs mu_ and by_id_
  // (declared after programs_, so destroyed before it).
  programs_.reset();
}

Coverage CgroupNetEnforcer::coverage(policy::Category c) const {
  if (c != policy::Category::Network) return {};
  if (!programs_) return {Coverage::Level::Unsupported, "cgroup-bpf", error_};
  return {Coverage::Level::Enforced, "cgroup-bpf (cgroup/sock_create)", ""};
}

Counters CgroupNetEnforcer::counters() const {
  std::lock_guard lock(mu_);
  Counters c;
  c.events = events_;
  c.denied = denied_;
  c.enforced = by_id_.size();
  return c;
}

Result<std::map<uint16_t, std::string>>
CgroupNetEnforcer::claim_sources(State& s, const policy::RuleSet& rs) {
  std::map<uint16_t, std::string> out;
  std::set<ExeKey> exes;
  const std::string root = "/proc/" + std::to_string(s.w.init_pid) + "/root";
  const Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return errno_error("open " + root);
  for (const auto& path : source_paths(rs)) {
    const auto key = exe_key_in(root_fd.get(), path);
    if (!key) continue; // not in this image: the rule can never match
    auto it = exe_ids_.find(*key);
    if (it == exe_ids_.end()) {
      uint16_t id = 1;
      std::set<uint16_t> used;
      for (const auto& [k, v] : exe_ids_) used.insert(v.first);
      while (used.contains(id)) ++id;
      if (auto r = programs_->set_exe(*key, id); !r) return r.error();
      it = exe_ids_.emplace(*key, std::make_pair(id, 0)).first;
    }
    if (!s.exes.contains(*key) && !exes.contains(*key)) ++it->second.second;
    exes.insert(*key);
    out.emplace(it->second.first, path);
  }
  std::set<ExeKey> dropped;
  for (const auto& k : s.exes)
    if (!exes.contains(k)) dropped.insert(k);
  unclaim_exes(dropped);
  s.exes = std::move(exes);
  return out;
}

void CgroupNetEnforcer::unclaim_exes(const std::set<ExeKey>& exes) {
  for (const auto& k : exes) {
    auto it = exe_ids_.find(k);
    if (it == exe_ids_.end() || --it->second.second > 0) continue;
    programs_->erase_exe(k);
    exe_ids_.erase(it);
  }
}

// The processes already running in the workload (they exec'd before the tracepoint saw
// them, or while no agent ran): their program from /proc/<pid>/exe.
void CgroupNetEnforcer::seed_tasks(const State& s) {
  for (const int pid : cgroupnet::processes_in(s.dir)) {
    const auto key = exe_key("/proc/" + std::to_string(pid) + "/exe");
    const auto it = key ? exe_ids_.find(*key) : exe_ids_.end();
    if (it != exe_ids_.end())
      (void)programs_->set_task(static_cast<uint32_t>(pid), it->second.first);
    else
      programs_->erase_task(static_cast<uint32_t>(pid));
  }
}

Result<void> CgroupNetEnforcer::write_table(State& s, const Table& t) {
  for (const auto set : policy::socket_name_sets()) {
    const auto any = policy::decide_socket(*t.rules, set, "");
    if (auto r = programs_->set_verdict(s.cgroup, t.gen, set, 0, any.allow, any.alert); !r)
      return r;
    for (const auto& [id, path] : t.sources) {
      const auto v = policy::decide_socket(*t.rules, set, path);
      if (auto r = programs_->set_verdict(s.cgroup, t.gen, set, id, v.allow, v.alert); !r) return r;
    }
  }
  return {};
}

// Deletes every verdict of `cgroup` of another generation than `keep` (a scan: also those a
// previous agent wrote).
void CgroupNetEnforcer::drop_gen(uint64_t cgroup, uint32_t keep) {
  for (const auto set : policy::socket_name_sets()) {
    for (uint32_t gen : {keep - 1, keep - 2}) {
      programs_->erase_verdict(cgroup, gen, set, 0);
      for (const auto& [k, v] : exe_ids_) programs_->erase_verdict(cgroup, gen, set, v.first);
    }
  }
}

Result<void> CgroupNetEnforcer::enforce(const workload::Workload& w,
                                        std::shared_ptr<const policy::RuleSet> rules) {
  if (!programs_) return {};
  if (rules == nullptr || rules->traits(policy::Category::Network).rules == 0) {
    release(w.id);
    return {};
  }
  uint64_t cgroup = 0;
  auto r = enforce_locked(w, std::move(rules), &cgroup);
  if (r) publish_pending(cgroup);
  return r;
}

Result<void> CgroupNetEnforcer::enforce_locked(const workload::Workload& w,
                                               std::shared_ptr<const policy::RuleSet> rules,
                                               uint64_t* cgroup) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(w.id);
  const bool fresh = it == by_id_.end();
  if (fresh) {
    State s;
    s.w = w;
    auto dir = cgroupnet::cgroup_dir_of(w.init_pid);
    if (!dir) return dir.error();
    auto id = cgroupnet::cgroup_id_of(*dir);
    if (!id) return id.error();
    s.dir = *dir;
    s.cgroup = *id;
    const auto root = fanotify::read_link("/proc/" + std::to_string(w.init_pid) + "/root");
    s.root_prefix = root && *root != "/" ? *root : std::string();
    it = by_id_.emplace(w.id, std::move(s)).first;
  }
  State& s = it->second;
  s.w = w;
  Table t;
  t.rules = std::move(rules);
  // The next generation after what the kernel holds (a previous agent's, too).
  t.gen = std::max(s.cur.gen, programs_->workload_gen(s.cgroup).value_or(0)) + 1;
  auto sources = claim_sources(s, *t.rules);
  Result<void> r = sources ? Result<void>() : Result<void>(sources.error());
  if (r) {
    t.sources = std::move(*sources);
    r = write_table(s, t);
  }
  if (r) {
    seed_tasks(s);
    const bool missing = policy::decide_socket(*t.rules, policy::kSockOther, "").allow;
    r = programs_->set_workload(s.cgroup, t.gen, missing); // the switch to the new table
  }
  if (r) r = programs_->attach(s.dir);
  if (!r) {
    if (fresh) {
      programs_->erase_workload(s.cgroup);
      unclaim_exes(s.exes);
      by_id_.erase(it);
    }
    return r;
  }
  drop_gen(s.cgroup, t.gen);
  if (s.cur.rules) s.prev = std::move(s.cur);
  s.cur = std::move(t);
  id_of_cgroup_[s.cgroup] = w.id;
  kept_.erase(s.cgroup);
  save_state();
  *cgroup = s.cgroup;
  return {};
}

void CgroupNetEnforcer::release(const std::string& id) {
  if (!programs_) return;
  std::lock_guard lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  State& s = it->second;
  if (o_.log) o_.log("cgroup-bpf: releasing " + id + " (" + s.dir + ")");
  // First: no socket is judged against a missing table.
  if (auto r = programs_->detach(s.dir); !r && o_.log)
    o_.log("cgroup-bpf: " + r.error().to_string());
  programs_->erase_workload(s.cgroup);
  drop_gen(s.cgroup, s.cur.gen + 1);
  drop_gen(s.cgroup, s.cur.gen + 2);
  unclaim_exes(s.exes);
  id_of_cgroup_.erase(s.cgroup);
  by_id_.erase(it);
  save_state();
}

size_t CgroupNetEnforcer::release_unclaimed() {
  if (!programs_) return 0;
  std::lock_guard lock(mu_);
  const size_t n = kept_.size();
  for (const auto& [cgroup, dir] : kept_) {
    (void)programs_->detach(dir); // fails when the cgroup is gone, with its attachment
    programs_->erase_workload(cgroup);
  }
  kept_.clear();
  pending_.clear();
  save_state();
  return n;
}

// The alert for a socket the kernel reported; nullopt when its workload is not known (yet).
std::optional<events::Alert> CgroupNetEnforcer::alert_for(const cgroupnet::SocketEvent& e) {
  const auto id = id_of_cgroup_.find(e.cgroup);
  if (id == id_of_cgroup_.end()) return std::nullopt;
  const State& s = by_id_.at(id->second);
  const Table* t =
      s.cur.gen == e.gen ? &s.cur : (s.prev && s.prev->gen == e.gen ? &*s.prev : nullptr);
  if (t == nullptr) t = &s.cur; // a previous agent's generation: judged by today's rules
  const auto src = t->sources.find(e.source);
  const auto v =
      policy::decide_socket(*t->rules, e.names, src == t->sources.end() ? "" : src->second);
  const auto who = fanotify::read_actor(static_cast<int>(e.tid), s.root_prefix);
  const std::string resource = policy::socket_resource(e.family, e.type, e.protocol);
  auto a = fanotify::make_alert(s.w, who, v, {policy::Category::Network, resource, 0, e.allowed});
  a.operation = "Network";
  a.data = "syscall=SYS_SOCKET cgroup=BPF_CGROUP_INET_SOCK_CREATE";
  a.enforcer = "cgroup-bpf";
  return a;
}

void CgroupNetEnforcer::on_event(const cgroupnet::SocketEvent& e) {
  std::optional<events::Alert> a;
  {
    std::lock_guard lock(mu_);
    ++events_;
    if (!e.allowed) ++denied_;
    a = alert_for(e);
    // Reported while no agent ran, for a workload a restarted agent has not enforced yet:
    // kept until it does (bounded).
    if (!a && kept_.contains(e.cgroup) && pending_.size() < kMaxPending) pending_.push_back(e);
  }
  if (a && o_.sink) o_.sink(std::move(*a));
}

void CgroupNetEnforcer::publish_pending(uint64_t cgroup) {
  std::vector<events::Alert> out;
  {
    std::lock_guard lock(mu_);
    std::erase_if(pending_, [&](const cgroupnet::SocketEvent& e) {
      if (e.cgroup != cgroup) return false;
      if (auto a = alert_for(e)) out.push_back(std::move(*a));
      return true;
    });
  }
  for (auto& a : out)
    if (o_.sink) o_.sink(std::move(a));
}

// cgroupnet.state: "prog <id>" and one "cgroup <id> <dir>" per attachment, written
// atomically (rename) after every change.
void CgroupNetEnforcer::save_state() {
  if (o_.state_dir.empty() || !programs_) return;
  const std::string path = o_.state_dir + "/cgroupnet.state", tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "prog " << programs_->program_id() << "\n";
    for (const auto& [id, s] : by_id_) out << "cgroup " << s.cgroup << " " << s.dir << "\n";
    for (const auto& [cgroup, dir] : kept_) out << "cgroup " << cgroup << " " << dir << "\n";
    if (!out) return;
  }
  std::rename(tmp.c_str(), path.c_str());
}

void CgroupNetEnforcer::load_state(uint32_t* prog_id) {
  if (o_.state_dir.empty()) return;
  std::ifstream in(o_.state_dir + "/cgroupnet.state");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string what;
    ls >> what;
    if (what == "prog") {
      ls >> *prog_id;
    } else if (what == "cgroup") {
      uint64_t id = 0;
      std::string dir;
      ls >> id >> dir;
      if (id != 0 && !dir.empty()) kept_[id] = dir;
    }
  }
}

} // namespace corral::enforce
