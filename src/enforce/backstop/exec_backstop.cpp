#include "enforce/backstop/exec_backstop.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/types.h>
#include <sys/sysmacros.h>

#include "sched_process_exec.skel.h"
#include "shared/exec_backstop.h"

namespace corral::enforce {
namespace {

constexpr const char* kProgramName = "backstop_exec";
constexpr int kPollMs = 100; // how soon the reader notices stop_

corral_backstop_key to_bpf(const ExecBackstop::Key& k) {
  corral_backstop_key b{};
  b.mnt_ns = k.mnt_ns;
  b.dev = k.dev;
  b.ino = k.ino;
  return b;
}

ExecBackstop::Key from_bpf(const corral_backstop_key& b) {
  return {b.mnt_ns, b.dev, b.ino};
}

Error libbpf_error(const std::string& what, int err) {
  return Error{what + ": " + std::strerror(err < 0 ? -err : err),
               "the exec backstop needs root and a kernel with BTF and tp_btf programs", err};
}

// Every (key, value) of a hash map: BPF_MAP_LOOKUP_BATCH, 256 at a time, where the kernel
// has it (5.6+), else key by key. Building a group scans whole maps (its workload's old
// approvals), so on a node of hundreds of workloads one syscall per key added up to seconds.
template <typename K, typename V> std::vector<std::pair<K, V>> read_map(int fd) {
  std::vector<std::pair<K, V>> out;
  constexpr __u32 kBatch = 256;
  std::vector<K> keys(kBatch);
  std::vector<V> values(kBatch);
  alignas(8) unsigned char token[std::max<size_t>(sizeof(K), 8)] = {};
  bool first = true;
  for (;;) {
    __u32 count = kBatch;
    const int r = bpf_map_lookup_batch(fd, first ? nullptr : token, token, keys.data(),
                                       values.data(), &count, nullptr);
    const int err = r == 0 ? 0 : errno;
    if (r != 0 && err != ENOENT) break; // no batch support: read below key by key
    for (__u32 i = 0; i < count; ++i) out.emplace_back(keys[i], values[i]);
    if (r != 0) return out; // ENOENT: that was the last batch
    first = false;
  }
  out.clear();
  K key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
    key = next;
    prev = &key;
  }
  return out;
}

struct MapInfo {
  std::string name;
  uint32_t key_size = 0, value_size = 0;
};

Result<MapInfo> map_info(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error("read a map's info");
  return MapInfo{info.name, info.key_size, info.value_size};
}

} // namespace

uint64_t kernel_dev(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | static_cast<uint64_t>(minor(dev));
}

// Opens, loads and attaches the programs; each map named in `reuse` is the given one (a
// previous agent's, with its entries) instead of a new one. Where the mapping programs
// cannot load (the VMA iterator needs Linux 6.7), the exec program runs alone.
Result<std::unique_ptr<ExecBackstop>>
ExecBackstop::load(const std::vector<std::pair<std::string, int>>& reuse) {
  auto b = load(reuse, true);
  if (b) return b;
  auto alone = load(reuse, false);
  if (!alone) return b.error();
  (*alone)->mapping_error_ = b.error().to_string();
  return alone;
}

Result<std::unique_ptr<ExecBackstop>>
ExecBackstop::load(const std::vector<std::pair<std::string, int>>& reuse, bool mappings) {
  libbpf_set_print(nullptr); // errors come back as values; the verifier log is not for users
  sched_process_exec* skel = sched_process_exec__open();
  if (skel == nullptr) return libbpf_error("open the exec backstop", errno);
  std::unique_ptr<sched_process_exec, void (*)(sched_process_exec*)> owner(
      skel, sched_process_exec__destroy);
  for (const auto& [name, fd] : reuse) {
    bpf_map* map = bpf_object__find_map_by_name(skel->obj, name.c_str());
    if (map == nullptr) return Error{"the exec backstop has no map " + name, "", 0};
    if (const int err = bpf_map__reuse_fd(map, fd); err != 0)
      return libbpf_error("reuse the kept exec backstop's map " + name, err);
  }
  if (!mappings) {
    bpf_program__set_autoload(skel->progs.backstop_filemap_fault, false);
    bpf_program__set_autoload(skel->progs.backstop_filemap_map_pages, false);
  }
  if (const int err = sched_process_exec__load(skel); err != 0)
    return libbpf_error("load the exec backstop (tp_btf/sched_process_exec, mm_filemap_*)", err);
  if (const int err = sched_process_exec__attach(skel); err != 0)
    return libbpf_error("attach the exec backstop (sched_process_exec, mm_filemap_*)", err);
  // Our own copies of the fds: the skeleton goes now; the links keep the programs attached.
  const auto dup = [](int fd) { return Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); };
  std::unique_ptr<ExecBackstop> b(new ExecBackstop());
  b->link_ = dup(bpf_link__fd(skel->links.backstop_exec));
  if (mappings) {
    b->fault_links_[0] = dup(bpf_link__fd(skel->links.backstop_filemap_fault));
    b->fault_links_[1] = dup(bpf_link__fd(skel->links.backstop_filemap_map_pages));
    if (!b->fault_links_[0] || !b->fault_links_[1]) return errno_error("dup BPF fds");
  }
  b->mapped_since_ = dup(bpf_map__fd(skel->maps.mapped_since));
  b->files_ = dup(bpf_map__fd(skel->maps.files));
  b->namespaces_ = dup(bpf_map__fd(skel->maps.namespaces));
  b->workloads_ = dup(bpf_map__fd(skel->maps.workloads));
  b->approved_ = dup(bpf_map__fd(skel->maps.approved));
  b->events_ = dup(bpf_map__fd(skel->maps.events));
  b->counters_ = dup(bpf_map__fd(skel->maps.counters));
  if (!b->link_ || !b->mapped_since_ || !b->files_ || !b->namespaces_ || !b->workloads_ ||
      !b->approved_ || !b->events_ || !b->counters_)
    return errno_error("dup BPF fds");
  return b;
}

Result<std::unique_ptr<ExecBackstop>> ExecBackstop::make(HitFn on_hit) {
  auto b = load({});
  if (!b) return b;
  if (auto r = (*b)->start(std::move(on_hit)); !r) return r.error();
  return b;
}

Result<std::unique_ptr<ExecBackstop>> ExecBackstop::adopt(Fd link, HitFn on_hit) {
  bpf_link_info link_info{};
  uint32_t len = sizeof link_info;
  if (bpf_obj_get_info_by_fd(link.get(), &link_info, &len) != 0) {
    return errno_error("read the kept exec backstop's link");
  }
  const Fd prog(bpf_prog_get_fd_by_id(link_info.prog_id));
  if (!prog) return errno_error("open the kept exec backstop's program");
  uint32_t map_ids[16] = {};
  bpf_prog_info prog_info{};
  prog_info.nr_map_ids = 16;
  prog_info.map_ids = reinterpret_cast<uintptr_t>(map_ids);
  len = sizeof prog_info;
  if (bpf_obj_get_info_by_fd(prog.get(), &prog_info, &len) != 0) {
    return errno_error("read the kept exec backstop's program");
  }
  if (std::string(prog_info.name) != kProgramName) {
    return Error{"the kept BPF link is not an exec backstop (program " +
                     std::string(prog_info.name) + ")",
                 "", 0};
  }
  // The kept maps, by name; load() checks that each fits this agent's program.
  std::vector<Fd> kept;
  std::vector<std::pair<std::string, int>> reuse;
  for (uint32_t i = 0; i < prog_info.nr_map_ids && i < 16; ++i) {
    Fd fd(bpf_map_get_fd_by_id(map_ids[i]));
    if (!fd) return errno_error("open a map of the kept exec backstop");
    auto info = map_info(fd.get());
    if (!info) return info.error();
    if (info->name.ends_with(".rodata") || info->name.ends_with(".bss")) continue;
    reuse.emplace_back(info->name, fd.get());
    kept.push_back(std::move(fd));
  }
  for (const char* name : {"files", "namespaces", "workloads", "approved", "events", "counters"}) {
    if (std::none_of(reuse.begin(), reuse.end(), [&](const auto& r) { return r.first == name; }))
      return Error{"the kept exec backstop has other maps than this agent's (another version?)", "",
                   0};
  }
  auto b = load(reuse);
  if (!b) return b;
  (*b)->index_kept_maps();
  (*b)->update_mapped_since(); // the kept workloads, in the new programs' map
  if (auto r = (*b)->start(std::move(on_hit)); !r) return r.error();
  return b; // the kept link closes with `link`: the holder's copy is replaced by ours
}

std::vector<std::pair<std::string, int>> ExecBackstop::links() const {
  const auto suffixes = link_suffixes();
  std::vector<std::pair<std::string, int>> out{{suffixes[0], link_.get()}};
  for (size_t i = 0; i < fault_links_.size(); ++i) {
    if (fault_links_[i]) out.emplace_back(suffixes[i + 1], fault_links_[i].get());
  }
  return out;
}

std::vector<std::string> ExecBackstop::link_suffixes() {
  return {"", "/filemap-fault", "/filemap-map-pages"};
}

Result<void> ExecBackstop::start(HitFn on_hit) {
  on_hit_ = std::move(on_hit);
  const auto sample = [](void* self, void* data, size_t size) -> int {
    if (size < sizeof(corral_backstop_event)) return 0;
    corral_backstop_event e{};
    std::memcpy(&e, data, sizeof e);
    Hit h;
    h.key = from_bpf(e.key);
    h.action = e.action == CORRAL_BACKSTOP_AUDIT ? Action::Audit : Action::Block;
    h.host_pid = e.host_pid;
    h.host_ppid = e.host_ppid;
    h.pid = e.pid;
    h.ppid = e.ppid;
    h.uid = e.uid;
    h.kind = static_cast<Kind>(e.kind);
    h.cgroup = e.cgroup;
    h.path.assign(e.path, strnlen(e.path, sizeof e.path));
    if (e.nparts > 0) { // leaf first: "/" + root-most ... leaf
      h.path = e.deeper != 0 ? "/..." : "";
      for (uint32_t i = std::min<uint32_t>(e.nparts, CORRAL_BACKSTOP_PARTS); i-- > 0;)
        h.path += "/" + std::string(e.parts[i], strnlen(e.parts[i], sizeof e.parts[i]));
    }
    const size_t n = std::min<size_t>(e.args_size, sizeof e.args);
    for (size_t i = 0; i < n;) {
      const size_t len = strnlen(e.args + i, n - i);
      h.args.emplace_back(e.args + i, len);
      i += len + 1;
    }
    auto* b = static_cast<ExecBackstop*>(self);
    if (b->on_hit_) b->on_hit_(h);
    return 0;
  };
  ring_buffer* rb = ring_buffer__new(events_.get(), sample, this, nullptr);
  if (rb == nullptr) return libbpf_error("read the exec backstop's ring buffer", errno);
  ring_ = {rb, ring_buffer__free};
  reader_ = std::thread([this] { read_loop(); });
  return {};
}

void ExecBackstop::read_loop() {
  while (!stop_.load()) {
    const int n = ring_buffer__poll(ring_.get(), kPollMs);
    if (n < 0 && n != -EINTR) {
      reader_failed_ = true; // shown by counters(); kills go on in the kernel
      break;
    }
  }
}

ExecBackstop::~ExecBackstop() {
  stop_ = true;
  if (reader_.joinable()) reader_.join();
}

Result<void> ExecBackstop::set(const Entry& e) {
  corral_backstop_rule rule{};
  if (e.path.size() >= sizeof rule.path) {
    return Error{"path too long for the exec backstop: " + e.path, "", ENAMETOOLONG};
  }
  rule.action = e.action == Action::Audit ? CORRAL_BACKSTOP_AUDIT : CORRAL_BACKSTOP_BLOCK;
  std::memcpy(rule.path, e.path.data(), e.path.size());
  const auto key = to_bpf(e.key);
  if (bpf_map_update_elem(files_.get(), &key, &rule, BPF_ANY) != 0) {
    return errno_error("add an exec backstop entry for " + e.path);
  }
  std::lock_guard lock(index_mu_);
  files_index_[e.key.mnt_ns].emplace(e.key.dev, e.key.ino);
  return {};
}

void ExecBackstop::erase(const Key& k) {
  const auto key = to_bpf(k);
  bpf_map_delete_elem(files_.get(), &key);
  std::lock_guard lock(index_mu_);
  if (const auto it = files_index_.find(k.mnt_ns); it != files_index_.end()) {
    it->second.erase({k.dev, k.ino});
    if (it->second.empty()) files_index_.erase(it);
  }
}

void ExecBackstop::erase_namespace(uint64_t mnt_ns) {
  std::set<std::pair<uint64_t, uint64_t>> keys;
  {
    std::lock_guard lock(index_mu_);
    if (const auto it = files_index_.find(mnt_ns); it != files_index_.end()) {
      keys = std::move(it->second);
      files_index_.erase(it);
    }
  }
  for (const auto& [dev, ino] : keys) {
    const auto key = to_bpf(Key{mnt_ns, dev, ino});
    bpf_map_delete_elem(files_.get(), &key);
  }
}

std::vector<ExecBackstop::Entry> ExecBackstop::entries() const {
  std::vector<Entry> out;
  for (const auto& [key, rule] :
       read_map<corral_backstop_key, corral_backstop_rule>(files_.get())) {
    Entry e;
    e.key = from_bpf(key);
    e.action = rule.action == CORRAL_BACKSTOP_AUDIT ? Action::Audit : Action::Block;
    e.path.assign(rule.path, strnlen(rule.path, sizeof rule.path));
    out.push_back(std::move(e));
  }
  return out;
}

Result<void> ExecBackstop::set_unmarked(uint64_t mnt_ns, Action action) {
  corral_backstop_namespace ns{};
  ns.unmarked = action == Action::Audit ? CORRAL_BACKSTOP_AUDIT : CORRAL_BACKSTOP_BLOCK;
  const __u64 key = mnt_ns;
  if (bpf_map_update_elem(namespaces_.get(), &key, &ns, BPF_ANY) != 0) {
    return errno_error("set the exec backstop's verdict for mount namespace " +
                       std::to_string(mnt_ns));
  }
  return {};
}

void ExecBackstop::erase_unmarked(uint64_t mnt_ns) {
  const __u64 key = mnt_ns;
  bpf_map_delete_elem(namespaces_.get(), &key);
}

std::vector<uint64_t> ExecBackstop::unmarked_namespaces() const {
  std::vector<uint64_t> out;
  for (const auto& [key, ns] : read_map<__u64, corral_backstop_namespace>(namespaces_.get()))
    out.push_back(key);
  return out;
}

Result<void> ExecBackstop::set_workload(uint64_t cgroup, const WorkloadRule& rule) {
  corral_backstop_workload w{};
  w.unapproved = static_cast<__u32>(rule.unapproved);
  w.mapped = static_cast<__u32>(rule.mapped);
  w.start_ns = rule.start_ns;
  const __u64 key = cgroup;
  if (bpf_map_update_elem(workloads_.get(), &key, &w, BPF_ANY) != 0) {
    return errno_error("list cgroup " + std::to_string(cgroup) + " in the exec backstop");
  }
  {
    std::lock_guard lock(index_mu_);
    if (w.mapped != 0 && w.start_ns != 0)
      mapped_starts_[cgroup] = w.start_ns;
    else
      mapped_starts_.erase(cgroup);
  }
  update_mapped_since();
  return {};
}

void ExecBackstop::update_mapped_since() {
  __u64 since = 0;
  {
    std::lock_guard lock(index_mu_);
    for (const auto& [cgroup, start] : mapped_starts_)
      if (since == 0 || start < since) since = start;
  }
  const __u32 zero = 0;
  bpf_map_update_elem(mapped_since_.get(), &zero, &since, BPF_ANY);
}

void ExecBackstop::erase_workload(uint64_t cgroup) {
  const __u64 key = cgroup;
  bpf_map_delete_elem(workloads_.get(), &key);
  {
    std::lock_guard lock(index_mu_);
    mapped_starts_.erase(cgroup);
  }
  update_mapped_since();
  erase_approvals(cgroup);
}

std::vector<uint64_t> ExecBackstop::workload_cgroups() const {
  std::vector<uint64_t> out;
  for (const auto& [key, w] : read_map<__u64, corral_backstop_workload>(workloads_.get()))
    out.push_back(key);
  return out;
}

Result<bool> ExecBackstop::approve(uint64_t cgroup, const FileState& f, uint32_t kinds) {
  auto r = approve_in(approved_.get(), cgroup, f, kinds);
  if (r) {
    std::lock_guard lock(index_mu_);
    auto& keys = approval_index_[cgroup];
    keys.emplace(f.dev, f.ino);
    if ((kinds & kInterp) != 0 && f.dev != 0) keys.emplace(0, f.ino);
  }
  return r;
}

void ExecBackstop::index_kept_maps() {
  std::lock_guard lock(index_mu_);
  files_index_.clear();
  for (const auto& [key, rule] : read_map<corral_backstop_key, corral_backstop_rule>(files_.get()))
    files_index_[key.mnt_ns].emplace(key.dev, key.ino);
  approval_index_.clear();
  for (const auto& [key, a] :
       read_map<corral_backstop_file, corral_backstop_approved>(approved_.get()))
    approval_index_[key.cgroup].emplace(key.dev, key.ino);
  mapped_starts_.clear();
  for (const auto& [key, w] : read_map<__u64, corral_backstop_workload>(workloads_.get()))
    if (w.mapped != 0 && w.start_ns != 0) mapped_starts_[key] = w.start_ns;
}

Result<bool> ExecBackstop::approve_in(int approvals, uint64_t cgroup, const FileState& f,
                                      uint32_t kinds) {
  const corral_backstop_file key{cgroup, f.dev, f.ino};
  corral_backstop_approved value{};
  // Kinds add up while the file is unchanged; a changed file starts afresh.
  const bool known = bpf_map_lookup_elem(approvals, &key, &value) == 0;
  if (known && value.ctime_sec == f.ctime_sec && value.ctime_nsec == f.ctime_nsec) {
    if ((value.kinds & kinds) == kinds) return false;
    kinds |= value.kinds;
  }
  value = corral_backstop_approved{f.ctime_sec, f.ctime_nsec, kinds};
  if (bpf_map_update_elem(approvals, &key, &value, BPF_ANY) != 0) {
    return errno_error("approve a file in the exec backstop");
  }
  // An interpreter is also found by its mapping, which may hold the file under its backing
  // filesystem (overlayfs): listed with dev 0 too (bpf/sched_process_exec.bpf.c).
  if ((kinds & kInterp) != 0 && f.dev != 0) {
    const corral_backstop_file any{cgroup, 0, f.ino};
    if (bpf_map_update_elem(approvals, &any, &value, BPF_ANY) != 0)
      return errno_error("approve an interpreter in the exec backstop");
  }
  return !known;
}

Result<Fd> ExecBackstop::approvals_of(int link_fd) {
  bpf_link_info link_info{};
  uint32_t len = sizeof link_info;
  if (bpf_obj_get_info_by_fd(link_fd, &link_info, &len) != 0)
    return errno_error("read the exec backstop's link");
  const Fd prog(bpf_prog_get_fd_by_id(link_info.prog_id));
  if (!prog) return errno_error("open the exec backstop's program");
  uint32_t map_ids[16] = {};
  bpf_prog_info prog_info{};
  prog_info.nr_map_ids = 16;
  prog_info.map_ids = reinterpret_cast<uintptr_t>(map_ids);
  len = sizeof prog_info;
  if (bpf_obj_get_info_by_fd(prog.get(), &prog_info, &len) != 0)
    return errno_error("read the exec backstop's program");
  for (uint32_t i = 0; i < prog_info.nr_map_ids && i < 16; ++i) {
    Fd fd(bpf_map_get_fd_by_id(map_ids[i]));
    if (!fd) continue;
    const auto info = map_info(fd.get());
    if (info && info->name == "approved" && info->key_size == sizeof(corral_backstop_file) &&
        info->value_size == sizeof(corral_backstop_approved))
      return fd;
  }
  return Error{"the exec backstop has no approvals map (another version?)", "", 0};
}

void ExecBackstop::erase_approvals(uint64_t cgroup) {
  std::set<std::pair<uint64_t, uint64_t>> keys;
  {
    std::lock_guard lock(index_mu_);
    if (const auto it = approval_index_.find(cgroup); it != approval_index_.end()) {
      keys = std::move(it->second);
      approval_index_.erase(it);
    }
  }
  for (const auto& [dev, ino] : keys) {
    const corral_backstop_file key{cgroup, dev, ino};
    bpf_map_delete_elem(approved_.get(), &key);
  }
}

ExecBackstop::Counters ExecBackstop::counters() const {
  Counters c;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return c;
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  c.reader_failed = reader_failed_;
  uint64_t* fields[] = {&c.kills, &c.audits, &c.dropped, &c.kill_failures};
  for (uint32_t i = 0; i < 4; ++i) {
    if (bpf_map_lookup_elem(counters_.get(), &i, values.data()) != 0) continue;
    for (const uint64_t v : values) *fields[i] += v;
  }
  return c;
}

} // namespace corral::enforce
