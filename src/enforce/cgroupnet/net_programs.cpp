#include "enforce/cgroupnet/net_programs.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroupnet.skel.h"
#include "shared/cgroupnet.h"

namespace corral::enforce::cgroupnet {
namespace {

constexpr int kPollMs = 100;
constexpr __u32 kMaxAttached = 64; // programs attached to one cgroup's sock_create hook

Error bpf_error(const std::string& what, int err) {
  return Error{what + ": " + std::strerror(err < 0 ? -err : err),
               "the network enforcer needs root and a kernel with cgroup v2 BPF "
               "(cgroup/sock_create) and tp_btf tracepoints",
               err < 0 ? -err : err};
}

struct ProgInfo {
  std::string name;
  uint32_t type = 0;
  std::vector<uint32_t> map_ids;
};

Result<ProgInfo> prog_info(int fd) {
  std::vector<__u32> ids(16);
  bpf_prog_info info{};
  info.nr_map_ids = static_cast<__u32>(ids.size());
  info.map_ids = reinterpret_cast<__u64>(ids.data());
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error("read a program's info");
  ids.resize(std::min<size_t>(info.nr_map_ids, ids.size()));
  return ProgInfo{info.name, info.type, ids};
}

Result<std::string> map_name(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error("read a map's info");
  return std::string(info.name);
}

Result<Fd> open_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return errno_error("open cgroup " + dir);
  return fd;
}

// The ids of the programs attached to a cgroup's own sock_create hook.
Result<std::vector<__u32>> attached(int cgroup_fd) {
  std::vector<__u32> ids(kMaxAttached);
  __u32 count = kMaxAttached, flags = 0;
  if (bpf_prog_query(cgroup_fd, BPF_CGROUP_INET_SOCK_CREATE, 0, &flags, ids.data(), &count) != 0)
    return errno_error("query the cgroup's sock_create programs");
  ids.resize(count);
  return ids;
}

} // namespace

Result<std::unique_ptr<NetPrograms>> NetPrograms::make(uint32_t adopt_id, std::string* why_not,
                                                       Links kept) {
  libbpf_set_print(nullptr);
  std::unique_ptr<NetPrograms> p(new NetPrograms());
  ::cgroupnet* skel = cgroupnet__open();
  if (skel == nullptr) return bpf_error("open the network programs", errno);
  p->skel_ = {skel, cgroupnet__destroy};

  // A previous agent's socket program: take it and its maps, if it is one of ours.
  if (adopt_id != 0) {
    Fd prog(bpf_prog_get_fd_by_id(adopt_id));
    auto info = prog ? prog_info(prog.get()) : Result<ProgInfo>(errno_error("open program"));
    std::vector<std::pair<std::string, Fd>> maps;
    if (info && info->name == kProgramName && info->type == BPF_PROG_TYPE_CGROUP_SOCK) {
      for (const auto id : info->map_ids) {
        Fd m(bpf_map_get_fd_by_id(id));
        if (!m) continue;
        if (auto n = map_name(m.get())) maps.emplace_back(*n, std::move(m));
      }
    }
    bool ok = info && !maps.empty();
    for (auto& [name, fd] : maps) {
      bpf_map* map = bpf_object__find_map_by_name(skel->obj, name.c_str());
      if (map == nullptr || bpf_map__reuse_fd(map, fd.get()) != 0) ok = false;
    }
    if (ok) {
      for (auto& m : maps) p->kept_maps_.push_back(std::move(m.second));
      p->adopted_prog_ = std::move(prog);
      p->adopted_ = true;
      bpf_program__set_autoload(skel->progs.corral_sock, false);
    } else if (why_not != nullptr) {
      *why_not = "program " + std::to_string(adopt_id) + " is gone or not ours" +
                 (info ? "" : " (" + info.error().to_string() + ")");
    }
  }
  // The tracepoints: those a previous agent left with the fd holder run on the maps taken
  // over above (and have run meanwhile); else ours, attached before the kept ones go.
  struct Tp {
    const char* id;
    bpf_program* prog;
    bpf_link** link;
  };
  const std::array<Tp, 3> tps = {
      {{"cgroupnet/exec", skel->progs.corral_net_exec, &skel->links.corral_net_exec},
       {"cgroupnet/fork", skel->progs.corral_net_fork, &skel->links.corral_net_fork},
       {"cgroupnet/exit", skel->progs.corral_net_exit, &skel->links.corral_net_exit}}};
  const bool keep = p->adopted_ && std::all_of(tps.begin(), tps.end(), [&kept](const Tp& t) {
                      return std::any_of(kept.begin(), kept.end(),
                                         [&t](const auto& k) { return k.first == t.id; });
                    });
  if (keep)
    for (const auto& t : tps) bpf_program__set_autoload(t.prog, false);
  if (const int err = cgroupnet__load(skel); err != 0)
    return bpf_error("load the network programs (cgroup/sock_create, tp_btf)", err);
  if (keep) {
    p->links_ = std::move(kept);
  } else {
    for (const auto& t : tps) {
      *t.link = bpf_program__attach(t.prog);
      if (*t.link == nullptr) return bpf_error(std::string("attach ") + t.id, errno);
    }
  }
  p->prog_fd_ = p->adopted_ ? p->adopted_prog_.get() : bpf_program__fd(skel->progs.corral_sock);
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(p->prog_fd_, &info, &len) != 0)
    return errno_error("read the socket program's id");
  p->prog_id_ = info.id;
  p->workloads_ = bpf_map__fd(skel->maps.net_workloads);
  p->verdicts_ = bpf_map__fd(skel->maps.net_verdicts);
  p->exes_ = bpf_map__fd(skel->maps.net_exes);
  p->tasks_ = bpf_map__fd(skel->maps.net_tasks);
  p->events_ = bpf_map__fd(skel->maps.net_events);
  p->counters_ = bpf_map__fd(skel->maps.net_counters);
  return p;
}

std::vector<std::pair<std::string, int>> NetPrograms::links() const {
  std::vector<std::pair<std::string, int>> out;
  if (!links_.empty()) {
    for (const auto& [id, fd] : links_) out.emplace_back(id, fd.get());
    return out;
  }
  out.emplace_back("cgroupnet/exec", bpf_link__fd(skel_->links.corral_net_exec));
  out.emplace_back("cgroupnet/fork", bpf_link__fd(skel_->links.corral_net_fork));
  out.emplace_back("cgroupnet/exit", bpf_link__fd(skel_->links.corral_net_exit));
  return out;
}

NetPrograms::~NetPrograms() {
  stop_ = true;
  if (reader_.joinable()) reader_.join();
}

Result<void> NetPrograms::read_events(EventFn fn) {
  on_event_ = std::move(fn);
  auto cb = [](void* ctx, void* data, size_t size) -> int {
    if (size < sizeof(corral_net_event)) return 0;
    corral_net_event e{};
    std::memcpy(&e, data, sizeof e);
    SocketEvent s{e.cgroup,
                  e.gen,
                  e.names,
                  e.source,
                  e.tgid,
                  e.tid,
                  static_cast<int>(e.family),
                  static_cast<int>(e.type),
                  static_cast<int>(e.protocol),
                  e.allow != 0};
    static_cast<NetPrograms*>(ctx)->on_event_(s);
    return 0;
  };
  ring_buffer* rb = ring_buffer__new(events_, cb, this, nullptr);
  if (rb == nullptr) return bpf_error("read the network alert ring buffer", errno);
  ring_ = {rb, ring_buffer__free};
  reader_ = std::thread([this] { read_loop(); });
  return {};
}

void NetPrograms::read_loop() {
  while (!stop_) {
    const int r = ring_buffer__poll(ring_.get(), kPollMs);
    if (r < 0 && r != -EINTR) break;
  }
}

Result<void> NetPrograms::attach(const std::string& cgroup_dir) {
  auto cg = open_dir(cgroup_dir);
  if (!cg) return cg.error();
  auto ids = attached(cg->get());
  if (!ids) return ids.error();
  bool ours = false;
  std::vector<Fd> stale;
  for (const auto id : *ids) {
    if (id == prog_id_) {
      ours = true;
      continue;
    }
    Fd other(bpf_prog_get_fd_by_id(id));
    auto info = other ? prog_info(other.get()) : Result<ProgInfo>(Error{"", "", 0});
    if (info && info->name == kProgramName) stale.push_back(std::move(other));
  }
  if (!ours &&
      bpf_prog_attach(prog_fd_, cg->get(), BPF_CGROUP_INET_SOCK_CREATE, BPF_F_ALLOW_MULTI) != 0)
    return errno_error("attach the socket program to " + cgroup_dir,
                       "the workload needs a cgroup v2 of its own");
  // Only once ours is in place: no moment without a socket program.
  for (const auto& s : stale)
    (void)bpf_prog_detach2(s.get(), cg->get(), BPF_CGROUP_INET_SOCK_CREATE);
  return {};
}

Result<void> NetPrograms::detach(const std::string& cgroup_dir) {
  auto cg = open_dir(cgroup_dir);
  if (!cg) return cg.error();
  if (bpf_prog_detach2(prog_fd_, cg->get(), BPF_CGROUP_INET_SOCK_CREATE) != 0)
    return errno_error("detach the socket program from " + cgroup_dir);
  return {};
}

Result<void> NetPrograms::probe_attach(const std::string& cgroup_parent) {
  const std::string dir =
      cgroup_parent + "/corral-net-probe-" + std::to_string(static_cast<long>(::getpid()));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return errno_error("create the scratch cgroup " + dir);
  auto cg = open_dir(dir);
  Result<void> r;
  if (!cg) {
    r = cg.error();
  } else if (bpf_prog_attach(prog_fd_, cg->get(), BPF_CGROUP_INET_SOCK_CREATE, BPF_F_ALLOW_MULTI) !=
             0) {
    r = errno_error("attach cgroup/sock_create to the scratch cgroup " + dir);
  } else {
    (void)bpf_prog_detach2(prog_fd_, cg->get(), BPF_CGROUP_INET_SOCK_CREATE);
  }
  cg = Fd();
  ::rmdir(dir.c_str());
  return r;
}

Result<void> NetPrograms::set_workload(uint64_t cgroup, uint32_t gen, bool missing_allow) {
  const corral_net_workload v{gen, missing_allow ? 1U : 0U};
  if (bpf_map_update_elem(workloads_, &cgroup, &v, BPF_ANY) != 0)
    return errno_error("write the workload's network entry");
  return {};
}

std::optional<uint32_t> NetPrograms::workload_gen(uint64_t cgroup) const {
  corral_net_workload v{};
  if (bpf_map_lookup_elem(workloads_, &cgroup, &v) != 0) return std::nullopt;
  return v.gen;
}

void NetPrograms::erase_workload(uint64_t cgroup) {
  (void)bpf_map_delete_elem(workloads_, &cgroup);
}

std::vector<uint64_t> NetPrograms::workload_cgroups() const {
  std::vector<uint64_t> out;
  uint64_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(workloads_, prev, &next) == 0) {
    out.push_back(next);
    key = next;
    prev = &key;
  }
  return out;
}

Result<void> NetPrograms::set_verdict(uint64_t cgroup, uint32_t gen, uint16_t names,
                                      uint16_t source, bool allow, bool alert) {
  const corral_net_key k{cgroup, gen, names, source};
  const corral_net_verdict v{static_cast<__u8>(allow), static_cast<__u8>(alert), 0, 0};
  if (bpf_map_update_elem(verdicts_, &k, &v, BPF_ANY) != 0)
    return errno_error("write a network verdict", "the verdict map (65536 entries) is full");
  return {};
}

void NetPrograms::erase_verdict(uint64_t cgroup, uint32_t gen, uint16_t names, uint16_t source) {
  const corral_net_key k{cgroup, gen, names, source};
  (void)bpf_map_delete_elem(verdicts_, &k);
}

Result<void> NetPrograms::set_exe(const ExeKey& k, uint16_t id) {
  const corral_net_exe e{k.dev, k.ino};
  if (bpf_map_update_elem(exes_, &e, &id, BPF_ANY) != 0)
    return errno_error("write a fromSource program", "the map of programs (4096) is full");
  return {};
}

void NetPrograms::erase_exe(const ExeKey& k) {
  const corral_net_exe e{k.dev, k.ino};
  (void)bpf_map_delete_elem(exes_, &e);
}

std::vector<std::pair<ExeKey, uint16_t>> NetPrograms::exes() const {
  std::vector<std::pair<ExeKey, uint16_t>> out;
  corral_net_exe key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(exes_, prev, &next) == 0) {
    __u16 id = 0;
    if (bpf_map_lookup_elem(exes_, &next, &id) == 0) out.push_back({{next.dev, next.ino}, id});
    key = next;
    prev = &key;
  }
  return out;
}

Result<void> NetPrograms::set_task(uint32_t tgid, uint16_t id) {
  if (bpf_map_update_elem(tasks_, &tgid, &id, BPF_ANY) != 0)
    return errno_error("record a fromSource process");
  return {};
}

void NetPrograms::erase_task(uint32_t tgid) {
  (void)bpf_map_delete_elem(tasks_, &tgid);
}

uint64_t NetPrograms::dropped() const {
  __u32 k = 0;
  __u64 v = 0;
  (void)bpf_map_lookup_elem(counters_, &k, &v);
  return v;
}

} // namespace corral::enforce::cgroupnet
