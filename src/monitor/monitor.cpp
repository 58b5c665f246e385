#include "monitor/monitor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "monitor.skel.h"
#include "monitor/access.h"
#include "monitor/proc.h"
#include "shared/monitor.h"

namespace corral::monitor {

static_assert(kKinds == CORRAL_MONITOR_KINDS);
static_assert(static_cast<int>(Kind::File) == CORRAL_MONITOR_FILE);
static_assert(static_cast<int>(Kind::Network) == CORRAL_MONITOR_NETWORK);
static_assert(kVisibleFile == CORRAL_MONITOR_VISIBLE_FILE);
static_assert(kVisibleNetwork == CORRAL_MONITOR_VISIBLE_NETWORK);

namespace {

constexpr auto kBatchPause = std::chrono::milliseconds(1);

// Set while this thread consumes the ring buffer (its callbacks may ask process()).
thread_local bool consuming = false;

// The size of a record of `kind` (the BPF side reserves exactly this much).
size_t record_size(uint32_t kind) {
  switch (kind) {
  case CORRAL_MONITOR_EXEC: return sizeof(corral_monitor_exec);
  case CORRAL_MONITOR_FILE: return sizeof(corral_monitor_file);
  case CORRAL_MONITOR_NETWORK: return sizeof(corral_monitor_net);
  default: return sizeof(corral_monitor_task);
  }
}

} // namespace

struct Monitor::Impl {
  Options options;
  ::monitor* skel = nullptr; // the skeleton (bpf/monitor.bpf.c)
  ring_buffer* rb = nullptr;
  std::thread thread;
  std::atomic<bool> stopping{false};
  mutable std::mutex consume_mu; // one consumer of the ring buffer at a time
  mutable std::mutex mu;         // the tree and the event counts
  std::unordered_map<int, Process> tree;
  std::deque<int> exited; // oldest first
  std::array<uint64_t, kKinds> events{};
  std::mutex vis_mu;                              // what follows
  std::unordered_map<uint64_t, unsigned> visible; // a copy of the BPF map `visible`
  bpf_link* sys_enter = nullptr;                  // attached while `visible` is not empty
  bpf_link* sys_exit = nullptr;

  ~Impl() {
    detach_syscalls();
    if (rb != nullptr) ring_buffer__free(rb);
    if (skel != nullptr) monitor__destroy(skel);
  }

  void seed() {
    std::lock_guard lock(mu);
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (auto p = from_proc(std::stoi(name))) tree.emplace(p->tgid, std::move(*p));
    }
  }

  void forget_exited_locked() {
    while (exited.size() > options.keep_exited) {
      const auto it = tree.find(exited.front());
      if (it != tree.end() && it->second.exited) tree.erase(it);
      exited.pop_front();
    }
  }

  // The tree's entry for the record's process, brought up to date with it.
  Process& update_locked(const corral_monitor_task& t, const void* data) {
    const int tgid = static_cast<int>(t.tgid);
    const auto [it, inserted] = tree.try_emplace(tgid);
    Process& p = it->second;
    if (t.kind == CORRAL_MONITOR_FORK) {
      // A new process runs its parent's image until it execs.
      const auto parent = tree.find(static_cast<int>(t.ppid));
      p = parent != tree.end() ? parent->second : Process{};
      p.exited = false;
      p.exit_code = 0;
      p.forked_by = static_cast<int>(t.ppid);
    } else if (inserted && (t.kind == CORRAL_MONITOR_FILE || t.kind == CORRAL_MONITOR_NETWORK)) {
      // Its fork was not seen (it started between the seed and the attach, or the ring
      // buffer was full): /proc still has its image.
      if (auto seen = from_proc(tgid)) p = std::move(*seen);
    }
    p.tgid = tgid;
    p.ppid = static_cast<int>(t.ppid);
    p.nspid = static_cast<int>(t.nspid);
    p.uid = t.uid;
    p.cgroup = t.cgroup;
    p.pidns = t.pidns;
    p.mntns = t.mntns;
    p.comm.assign(t.comm, strnlen(t.comm, sizeof t.comm));
    if (t.kind == CORRAL_MONITOR_EXEC) {
      const auto* x = static_cast<const corral_monitor_exec*>(data);
      p.exe.assign(x->path, strnlen(x->path, std::min<size_t>(x->path_len, sizeof x->path)));
      p.args = args_of(x->args, std::min<size_t>(x->args_len, sizeof x->args));
      p.tty.assign(x->tty, strnlen(x->tty, sizeof x->tty));
    }
    if (t.kind == CORRAL_MONITOR_EXIT) {
      p.exited = true;
      p.exit_code = t.exit_code;
      exited.push_back(tgid);
    }
    return p;
  }

  int handle(const void* data, size_t size) {
    if (size < sizeof(corral_monitor_task)) return 0;
    const auto* t = static_cast<const corral_monitor_task*>(data);
    if (t->kind == 0 || t->kind >= kKinds || size < record_size(t->kind)) return 0;
    const bool report = static_cast<bool>(options.on_event);
    Event ev;
    ev.kind = static_cast<Kind>(t->kind);
    {
      std::lock_guard lock(mu);
      ++events[t->kind];
      const Process& p = update_locked(*t, data);
      if (report) ev.process = p;
      // After the copy: with a reused tgid at the front of `exited`, p itself may go.
      if (t->kind == CORRAL_MONITOR_EXIT) forget_exited_locked();
    }
    if (!report) return 0;
    ev.tid = static_cast<int>(t->pid);
    if (t->kind == CORRAL_MONITOR_FILE)
      ev.file = file_access(*static_cast<const corral_monitor_file*>(data));
    else if (t->kind == CORRAL_MONITOR_NETWORK)
      ev.net = net_access(*static_cast<const corral_monitor_net*>(data));
    options.on_event(ev);
    return 0;
  }

  // Reads what the ring buffer holds now; returns the number of records or -errno.
  int consume() {
    std::lock_guard lock(consume_mu);
    consuming = true;
    const int n = ring_buffer__consume(rb);
    consuming = false;
    return n;
  }

  void run() {
    epoll_event ev{};
    while (!stopping.load()) {
      const int ready = ::epoll_wait(ring_buffer__epoll_fd(rb), &ev, 1, 100);
      if (ready < 0 && errno != EINTR) {
        if (options.log)
          options.log("monitor: waiting for its ring buffer failed: " +
                      std::string(strerror(errno)));
        return;
      }
      const int n = consume();
      if (n < 0) {
        if (options.log)
          options.log("monitor: reading its ring buffer failed: " + std::string(strerror(-n)));
        return;
      }
      // Read in batches: the kernel wakes the reader (an irq_work, then a context switch)
      // for each record that finds the ring empty (kernel/bpf/ringbuf.c,
      // bpf_ringbuf_commit), so a reader that keeps up costs every exec, fork and exit a
      // wakeup. After reading it pauses, and records gather without any wakeup: at most
      // ~1000 wakeups a second, at most kBatchPause of delay (process() reads the ring
      // itself when asked for a process it does not know yet).
      if (n > 0) std::this_thread::sleep_for(kBatchPause);
    }
  }

  // The raw syscall tracepoints run for every system call on the node: attached only while
  // some cgroup is visible. sys_exit first and gone last, so that no call that sys_enter
  // recorded misses its exit while both are attached.
  Result<void> attach_syscalls() {
    if (sys_enter != nullptr) return {};
    sys_exit = bpf_program__attach(skel->progs.monitor_sys_exit);
    if (sys_exit == nullptr) return errno_error("attach the monitor's tp_btf/sys_exit program");
    sys_enter = bpf_program__attach(skel->progs.monitor_sys_enter);
    if (sys_enter == nullptr) {
      auto e = errno_error("attach the monitor's tp_btf/sys_enter program");
      detach_syscalls();
      return e;
    }
    return {};
  }

  void detach_syscalls() {
    if (sys_enter != nullptr) bpf_link__destroy(sys_enter);
    if (sys_exit != nullptr) bpf_link__destroy(sys_exit);
    sys_enter = sys_exit = nullptr;
  }
};

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Monitor::~Monitor() {
  stop();
}

Result<std::unique_ptr<Monitor>> Monitor::start(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->skel = monitor__open();
  if (impl->skel == nullptr) return errno_error("open the system monitor's BPF object");
  // Attached on demand (set_visibility), not by monitor__attach.
  bpf_program__set_autoattach(impl->skel->progs.monitor_sys_enter, false);
  bpf_program__set_autoattach(impl->skel->progs.monitor_sys_exit, false);
  if (const int err = monitor__load(impl->skel); err != 0) {
    return Error{"load the system monitor's BPF programs: " + std::string(strerror(-err)),
                 "needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) and a kernel with BTF",
                 -err};
  }
  // Seeded before the programs run: an event for a process seen in /proc updates it.
  impl->seed();
  if (const int err = monitor__attach(impl->skel); err != 0)
    return Error{"attach the system monitor's programs: " + std::string(strerror(-err)), ""};
  Impl* i = impl.get();
  impl->rb = ring_buffer__new(
      bpf_map__fd(impl->skel->maps.events),
      [](void* ctx, void* data, size_t size) {
        return static_cast<Impl*>(ctx)->handle(data, size);
      },
      i, nullptr);
  if (impl->rb == nullptr)
    return Error{"open the system monitor's ring buffer: " + std::string(strerror(errno)), ""};
  impl->thread = std::thread([i] { i->run(); });
  return std::unique_ptr<Monitor>(new Monitor(std::move(impl)));
}

void Monitor::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stopping = true;
  impl_->thread.join();
}

std::optional<Process> Monitor::process(int tgid) const {
  for (int pass = 0;; ++pass) {
    {
      std::lock_guard lock(impl_->mu);
      const auto it = impl_->tree.find(tgid);
      if (it != impl_->tree.end()) return it->second;
    }
    // Not known yet: its fork may wait in the ring buffer (read in batches). Read it now,
    // unless this is the reading thread itself (an on_event callback).
    if (pass > 0 || consuming || impl_->rb == nullptr) return std::nullopt;
    impl_->consume();
  }
}

Stats Monitor::stats() const {
  Stats s;
  {
    std::lock_guard lock(impl_->mu);
    s.events = impl_->events;
    s.processes = impl_->tree.size();
  }
  const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(cpus > 0 ? cpus : 1);
  for (uint32_t k = 1; k < s.dropped.size(); ++k) {
    if (bpf_map__lookup_elem(impl_->skel->maps.dropped, &k, sizeof k, per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) == 0) {
      for (const uint64_t n : per_cpu) s.dropped[k] += n;
    }
  }
  return s;
}

Result<void> Monitor::set_visibility(uint64_t cgroup_id, unsigned mask) {
  mask &= kVisibleFile | kVisibleNetwork;
  Impl& i = *impl_;
  std::lock_guard lock(i.vis_mu);
  bpf_map* map = i.skel->maps.visible;
  if (mask == 0) {
    bpf_map__delete_elem(map, &cgroup_id, sizeof cgroup_id, 0); // ENOENT: it was not visible
    i.visible.erase(cgroup_id);
    if (i.visible.empty()) i.detach_syscalls();
    return {};
  }
  if (auto r = i.attach_syscalls(); !r) return r;
  const uint32_t value = mask;
  if (const int rc =
          bpf_map__update_elem(map, &cgroup_id, sizeof cgroup_id, &value, sizeof value, BPF_ANY);
      rc != 0) {
    if (i.visible.empty()) i.detach_syscalls();
    return Error{"make cgroup " + std::to_string(cgroup_id) +
                     " visible to the system monitor: " + strerror(-rc),
                 rc == -E2BIG ? "its map holds 4096 cgroups (bpf/monitor.bpf.c, visible)" : "",
                 -rc};
  }
  i.visible[cgroup_id] = mask;
  return {};
}

void Monitor::clear_visibility() {
  Impl& i = *impl_;
  std::lock_guard lock(i.vis_mu);
  for (const auto& [cgroup, mask] : i.visible)
    bpf_map__delete_elem(i.skel->maps.visible, &cgroup, sizeof cgroup, 0);
  i.visible.clear();
  i.detach_syscalls();
}

} // namespace corral::monitor
