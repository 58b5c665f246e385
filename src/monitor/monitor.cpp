#include "monitor/monitor.h"

#include <atomic>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor.skel.h"
#include "shared/monitor.h"

namespace corral::monitor {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// argv as NUL-separated strings, shown space-separated.
std::string args_of(const char* data, size_t len) {
  std::string out(data, len);
  while (!out.empty() && out.back() == '\0') out.pop_back();
  for (char& c : out) c = c == '\0' ? ' ' : c;
  return out;
}

uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A process as /proc shows it now (for the processes that ran before the monitor).
std::optional<Process> from_proc(int tgid) {
  const std::string dir = "/proc/" + std::to_string(tgid);
  const std::string stat = read_file(dir + "/stat");
  const auto open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > stat.size())
    return std::nullopt;
  Process p;
  p.tgid = tgid;
  p.comm = stat.substr(open + 1, close - open - 1);
  // After ") ": state, then ppid.
  p.ppid = std::atoi(stat.c_str() + stat.find(' ', close + 2) + 1);
  p.forked_by = p.ppid; // as far as /proc can tell
  const std::string status = read_file(dir + "/status");
  if (const auto u = status.find("\nUid:\t"); u != std::string::npos)
    p.uid = static_cast<uint32_t>(std::strtoul(status.c_str() + u + 6, nullptr, 10));
  if (const auto n = status.find("\nNSpid:\t"); n != std::string::npos) {
    const auto end = status.find('\n', n + 1);
    const auto last = status.rfind('\t', end);
    p.nspid = std::atoi(status.c_str() + last + 1);
  }
  const std::string cmdline = read_file(dir + "/cmdline");
  p.args = args_of(cmdline.data(), cmdline.size());
  std::error_code ec;
  p.exe = std::filesystem::read_symlink(dir + "/exe", ec).string();
  p.pidns = inode_of(dir + "/ns/pid");
  p.mntns = inode_of(dir + "/ns/mnt");
  return p;
}

} // namespace

struct Monitor::Impl {
  Options options;
  ::monitor* skel = nullptr; // the skeleton (bpf/monitor.bpf.c)
  ring_buffer* rb = nullptr;
  std::thread thread;
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  std::unordered_map<int, Process> tree;
  std::deque<int> exited; // oldest first
  std::array<uint64_t, 4> events{};

  ~Impl() {
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

  int handle(const void* data, size_t size) {
    if (size < sizeof(corral_monitor_task)) return 0;
    const auto* t = static_cast<const corral_monitor_task*>(data);
    Event ev{static_cast<Kind>(t->kind), {}};
    {
      std::lock_guard lock(mu);
      if (t->kind < events.size()) ++events[t->kind];
      const int tgid = static_cast<int>(t->tgid);
      Process& p = tree[tgid];
      if (t->kind == CORRAL_MONITOR_FORK) {
        // A new process runs its parent's image until it execs.
        const auto parent = tree.find(static_cast<int>(t->ppid));
        p = parent != tree.end() ? parent->second : Process{};
        p.exited = false;
        p.exit_code = 0;
        p.forked_by = static_cast<int>(t->ppid);
      }
      p.tgid = tgid;
      p.ppid = static_cast<int>(t->ppid);
      p.nspid = static_cast<int>(t->nspid);
      p.uid = t->uid;
      p.cgroup = t->cgroup;
      p.pidns = t->pidns;
      p.mntns = t->mntns;
      p.comm.assign(t->comm, strnlen(t->comm, sizeof t->comm));
      if (t->kind == CORRAL_MONITOR_EXEC && size >= sizeof(corral_monitor_exec)) {
        const auto* x = static_cast<const corral_monitor_exec*>(data);
        p.exe.assign(x->path, strnlen(x->path, std::min<size_t>(x->path_len, sizeof x->path)));
        p.args = args_of(x->args, std::min<size_t>(x->args_len, sizeof x->args));
      }
      if (t->kind == CORRAL_MONITOR_EXIT) {
        p.exited = true;
        p.exit_code = t->exit_code;
        exited.push_back(tgid);
        forget_exited_locked();
      }
      ev.process = p;
    }
    if (options.on_event) options.on_event(ev);
    return 0;
  }

  void run() {
    while (!stopping.load()) {
      const int n = ring_buffer__poll(rb, 100);
      if (n < 0 && n != -EINTR) {
        if (options.log)
          options.log("monitor: reading its ring buffer failed: " + std::string(strerror(-n)));
        return;
      }
    }
  }
};

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Monitor::~Monitor() {
  stop();
}

Result<std::unique_ptr<Monitor>> Monitor::start(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->skel = monitor__open_and_load();
  if (impl->skel == nullptr) {
    return Error{"load the system monitor's BPF programs: " + std::string(strerror(errno)),
                 "needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) and a kernel with BTF"};
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
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->tree.find(tgid);
  if (it == impl_->tree.end()) return std::nullopt;
  return it->second;
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

} // namespace corral::monitor
