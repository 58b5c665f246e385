#include "enforce/capabilities/cap_tracer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/types.h>

#include "cap_capable.skel.h"
#include "shared/capabilities.h"

namespace corral::enforce::capabilities {
namespace {

constexpr int kPollMs = 100; // how soon the reader notices stop_

// Callers whose capability checks are the kernel's noaudit probes (CAP_OPT_NOAUDIT) in
// Linux 6.x: kernel/capability.c's *_noaudit helpers, and mm's overcommit heuristic
// (security_vm_enough_memory_mm -> cap_vm_enough_memory, often inlined, calls cap_capable
// directly). Not here: ptrace_has_cap, whose noaudit depends on its caller's mode and is
// inlined into __ptrace_may_access — its CAP_SYS_PTRACE probes count as uses.
constexpr std::array<const char*, 5> kNoauditCallers = {
    "ns_capable_noaudit", "has_ns_capability_noaudit", "has_capability_noaudit",
    "cap_vm_enough_memory", "security_vm_enough_memory_mm"};
static_assert(kNoauditCallers.size() <= CORRAL_CAP_NOAUDIT_FUNCS);

Error libbpf_error(const std::string& what, int err) {
  return Error{what + ": " + std::strerror(err < 0 ? -err : err),
               "capability rules need root and a kernel with BTF", err < 0 ? -err : err};
}

// [start, end) of each named kernel function, from /proc/kallsyms (end: the next symbol).
std::map<std::string, std::pair<uint64_t, uint64_t>>
kernel_ranges(const std::vector<std::string>& names) {
  std::ifstream in("/proc/kallsyms");
  std::vector<uint64_t> addrs;
  std::map<std::string, uint64_t> starts;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream is(line);
    std::string addr, type, name;
    if (!(is >> addr >> type >> name)) continue;
    const uint64_t a = std::strtoull(addr.c_str(), nullptr, 16);
    if (a == 0) return {}; // kptr_restrict hides the addresses
    addrs.push_back(a);
    if ((type == "t" || type == "T") && std::find(names.begin(), names.end(), name) != names.end())
      starts.emplace(name, a);
  }
  std::sort(addrs.begin(), addrs.end());
  std::map<std::string, std::pair<uint64_t, uint64_t>> out;
  for (const auto& [name, start] : starts) {
    const auto next = std::upper_bound(addrs.begin(), addrs.end(), start);
    if (next != addrs.end()) out[name] = {start, *next};
  }
  return out;
}

bpf_program* program_of(cap_capable* skel, Mechanism m) {
  switch (m) {
  case Mechanism::Lsm: return skel->progs.cap_lsm;
  case Mechanism::FmodRet: return skel->progs.cap_fmod_ret;
  case Mechanism::Tracepoint: break;
  }
  return skel->progs.cap_tp;
}

// Gives the tracepoint program the ranges it tells noaudit probes by; false without them.
bool set_noaudit_ranges(cap_capable* skel) {
  std::vector<std::string> names(kNoauditCallers.begin(), kNoauditCallers.end());
  names.emplace_back("cap_capable");
  const auto ranges = kernel_ranges(names);
  const auto cc = ranges.find("cap_capable");
  if (cc == ranges.end()) return false;
  auto* ro = skel->rodata;
  const_cast<__u64&>(ro->cap_capable_range[0]) = cc->second.first;
  const_cast<__u64&>(ro->cap_capable_range[1]) = cc->second.second;
  size_t i = 0;
  for (const char* n : kNoauditCallers) {
    const auto r = ranges.find(n);
    if (r == ranges.end()) continue; // not in this kernel, or inlined everywhere
    const_cast<__u64&>(ro->noaudit_ranges[i][0]) = r->second.first;
    const_cast<__u64&>(ro->noaudit_ranges[i][1]) = r->second.second;
    ++i;
  }
  return i > 0;
}

// A path from its components, leaf first: "/" + root-most ... leaf.
std::string joined(const char (&parts)[CORRAL_CAP_PARTS][CORRAL_CAP_PART_MAX], uint32_t n,
                   uint32_t deeper) {
  std::string path = deeper != 0 ? "/..." : "";
  for (uint32_t i = std::min<uint32_t>(n, CORRAL_CAP_PARTS); i-- > 0;)
    path += "/" + std::string(parts[i], strnlen(parts[i], CORRAL_CAP_PART_MAX));
  return path;
}

} // namespace

std::string_view to_string(Mechanism m) {
  switch (m) {
  case Mechanism::Lsm: return "lsm/capable";
  case Mechanism::FmodRet: return "fmod_ret/security_capable";
  case Mechanism::Tracepoint: break;
  }
  return "tp_btf/cap_capable";
}

Result<std::unique_ptr<CapTracer>> CapTracer::load(Mechanism m, const Options& o) {
  libbpf_set_print(nullptr); // errors come back as values; the verifier log is not for users
  cap_capable* skel = cap_capable__open();
  if (skel == nullptr) return libbpf_error("open the capability programs", errno);
  std::unique_ptr<cap_capable, void (*)(cap_capable*)> owner(skel, cap_capable__destroy);
  for (const Mechanism other : {Mechanism::Lsm, Mechanism::FmodRet, Mechanism::Tracepoint})
    bpf_program__set_autoload(program_of(skel, other), other == m);
  bool noaudit = true; // the enforcing hooks read CAP_OPT_NOAUDIT from their arguments
  if (m == Mechanism::Tracepoint) {
    const_cast<__u32&>(skel->rodata->kill_blocked) = o.kill_blocked ? 1 : 0;
    noaudit = set_noaudit_ranges(skel);
  }
  const std::string what(to_string(m));
  if (const int err = cap_capable__load(skel); err != 0) return libbpf_error(what, err);
  bpf_link* link = bpf_program__attach(program_of(skel, m));
  if (link == nullptr) return libbpf_error(what + " (attach)", errno);
  std::unique_ptr<bpf_link, int (*)(bpf_link*)> link_owner(link, bpf_link__destroy);
  const auto dup = [](int fd) { return Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); };
  std::unique_ptr<CapTracer> t(new CapTracer());
  t->mechanism_ = m;
  t->noaudit_known_ = noaudit;
  t->link_ = dup(bpf_link__fd(link));
  t->workloads_ = dup(bpf_map__fd(skel->maps.workloads));
  t->sources_ = dup(bpf_map__fd(skel->maps.sources));
  t->events_ = dup(bpf_map__fd(skel->maps.events));
  t->counters_ = dup(bpf_map__fd(skel->maps.counters));
  if (!t->link_ || !t->workloads_ || !t->sources_ || !t->events_ || !t->counters_)
    return errno_error("dup BPF fds");
  return t;
}

Result<std::unique_ptr<CapTracer>> CapTracer::make(Options o) {
  std::string refused;
  for (const Mechanism m : {Mechanism::Lsm, Mechanism::FmodRet, Mechanism::Tracepoint}) {
    auto t = load(m, o);
    if (!t) {
      refused += (refused.empty() ? "" : "; ") + t.error().message;
      continue;
    }
    (*t)->refused_ = refused;
    if (auto r = (*t)->start(std::move(o.on_use)); !r) return r.error();
    return t;
  }
  return Error{"no capability program loads here (" + refused + ")",
               "capability rules need BPF LSM, BPF_MODIFY_RETURN or the cap_capable tracepoint "
               "(Linux 6.14+) with BTF",
               0};
}

Result<void> CapTracer::start(std::function<void(const Use&)> on_use) {
  on_use_ = std::move(on_use);
  const auto sample = [](void* self, void* data, size_t size) -> int {
    if (size < sizeof(corral_cap_event)) return 0;
    corral_cap_event e{};
    std::memcpy(&e, data, sizeof e);
    Use u;
    u.cgroup = e.cgroup;
    u.dev = e.dev;
    u.ino = e.ino;
    u.cap = static_cast<int>(e.cap);
    u.action = static_cast<Action>(e.action);
    u.killed = e.killed == 1;
    u.kill_failed = e.killed == 2;
    u.denied = e.denied != 0;
    u.suppressed = e.suppressed;
    u.host_pid = e.host_pid;
    u.host_ppid = e.host_ppid;
    u.pid = e.pid;
    u.ppid = e.ppid;
    u.uid = e.uid;
    u.comm.assign(e.comm, strnlen(e.comm, sizeof e.comm));
    u.exe = joined(e.parts, e.nparts, e.deeper);
    u.parent_exe = joined(e.pparts, e.npparts, e.pdeeper);
    // argv[0] is named by exe; the rest as fanotify alerts give it (Source "exe args").
    const std::string argv(e.args, std::min<size_t>(e.args_size, sizeof e.args));
    const size_t first = argv.find('\0');
    if (first != std::string::npos) {
      u.args = argv.substr(first + 1);
      while (!u.args.empty() && u.args.back() == '\0') u.args.pop_back();
      std::replace(u.args.begin(), u.args.end(), '\0', ' ');
    }
    auto* t = static_cast<CapTracer*>(self);
    if (t->on_use_) t->on_use_(u);
    return 0;
  };
  ring_buffer* rb = ring_buffer__new(events_.get(), sample, this, nullptr);
  if (rb == nullptr) return libbpf_error("read the capability programs' ring buffer", errno);
  ring_ = {rb, ring_buffer__free};
  reader_ = std::thread([this] { read_loop(); });
  return {};
}

void CapTracer::read_loop() {
  while (!stop_.load()) {
    const int n = ring_buffer__poll(ring_.get(), kPollMs);
    if (n < 0 && n != -EINTR) {
      reader_failed_ = true; // shown by counters(); kills and denials go on in the kernel
      break;
    }
  }
}

CapTracer::~CapTracer() {
  stop_ = true;
  if (reader_.joinable()) reader_.join();
}

Result<void> CapTracer::set_workload(uint64_t cgroup, const Actions& actions, uint64_t sourced) {
  corral_cap_workload v{};
  for (size_t i = 0; i < kMaxCaps; ++i) v.action[i] = static_cast<__u8>(actions[i]);
  v.sourced = sourced;
  if (bpf_map_update_elem(workloads_.get(), &cgroup, &v, BPF_ANY) != 0)
    return errno_error("add workload cgroup " + std::to_string(cgroup) + " to the capability map");
  return {};
}

void CapTracer::erase_workload(uint64_t cgroup) {
  (void)bpf_map_delete_elem(workloads_.get(), &cgroup);
}

Result<void> CapTracer::set_source(uint64_t cgroup, uint64_t dev, uint64_t ino, int cap, Action a) {
  corral_cap_source k{};
  k.cgroup = cgroup;
  k.dev = dev;
  k.ino = ino;
  k.cap = static_cast<__u32>(cap);
  const __u32 v = static_cast<__u32>(a);
  if (bpf_map_update_elem(sources_.get(), &k, &v, BPF_ANY) != 0)
    return errno_error("add a fromSource capability verdict (map full?)");
  return {};
}

void CapTracer::erase_sources(uint64_t cgroup) {
  std::vector<corral_cap_source> doomed;
  corral_cap_source key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(sources_.get(), prev, &next) == 0) {
    if (next.cgroup == cgroup) doomed.push_back(next);
    key = next;
    prev = &key;
  }
  for (const auto& k : doomed) (void)bpf_map_delete_elem(sources_.get(), &k);
}

CapTracer::Counters CapTracer::counters() const {
  Counters c;
  c.reader_failed = reader_failed_.load();
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return c;
  std::array<uint64_t, CORRAL_CAP_COUNTERS> sum{};
  std::vector<__u64> per_cpu(static_cast<size_t>(ncpu));
  for (__u32 i = 0; i < CORRAL_CAP_COUNTERS; ++i) {
    if (bpf_map_lookup_elem(counters_.get(), &i, per_cpu.data()) != 0) continue;
    for (const auto v : per_cpu) sum[i] += v;
  }
  c.reported = sum[CORRAL_CAP_REPORTED];
  c.suppressed = sum[CORRAL_CAP_SUPPRESSED];
  c.dropped = sum[CORRAL_CAP_DROPPED];
  c.killed = sum[CORRAL_CAP_KILLED];
  c.kill_failed = sum[CORRAL_CAP_KILL_FAILED];
  c.noaudit = sum[CORRAL_CAP_NOAUDIT];
  c.denied = sum[CORRAL_CAP_DENIED];
  return c;
}

} // namespace corral::enforce::capabilities
