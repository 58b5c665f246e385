// The system monitor's file-event pipeline (issue 10), whole-process: a child in a scratch
// cgroup v2 opens and closes an existing file in a tight loop for N seconds, three times:
// with no cgroup visible (the syscall hooks detached), with another cgroup visible (hooks
// attached, the child's calls cost one map lookup), and with its own cgroup visible (every
// open is an event through the ring buffer to on_event). Prints plain lines:
//   monitor_opens_per_s_<run> <opens per second the child made>
//   monitor_file_events_per_s <events delivered to on_event per second, visible run>
//   monitor_events_delivered / monitor_opens_made / monitor_dropped <counts, visible run>
// Root only; run: sudo build/bin/monitor_bench [--seconds N]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "scratch_cgroup.h"

namespace {

using corral::monitor::Event;
using corral::monitor::Kind;
using corral::monitor::Monitor;
using Clock = std::chrono::steady_clock;

struct Counts {
  std::atomic<int> child{0};
  std::atomic<uint64_t> file_events{0}; // of `child`
  std::atomic<bool> exited{false};      // its exit event arrived: all its events did
  std::atomic<int64_t> last_ns{0};      // when its last file event arrived
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// In the forked child (only system calls: the parent has threads): moves into the cgroup,
// waits for the go, opens and closes `path` until `seconds` passed, writes the count.
[[noreturn]] void loop_child(const char* procs, const char* path, int seconds, int ready, int go) {
  const char in = corral::testing::enter_cgroup(procs) ? 'y' : 'n';
  char b = 0;
  if (::write(ready, &in, 1) != 1 || ::read(go, &b, 1) != 1) ::_exit(2);
  timespec end{};
  ::clock_gettime(CLOCK_MONOTONIC, &end); // the vDSO: no system call
  end.tv_sec += seconds;
  uint64_t opens = 0;
  for (;;) {
    for (int i = 0; i < 1000; ++i) ::close(::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
    opens += 1000;
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) break;
  }
  ::_exit(::write(ready, &opens, sizeof opens) == sizeof opens ? 0 : 3);
}

struct Run {
  uint64_t opens = 0;
  double seconds = 0;       // the child's loop, as the parent saw it
  double drain_seconds = 0; // from the go until the last event was delivered
};

// One child in `cg`; returns what it did, or nullopt on failure (printed).
std::optional<Run> run_child(const corral::testing::ScratchCgroup& cg, const std::string& file,
                             int seconds, Counts& counts) {
  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) return std::nullopt;
  counts.file_events = 0;
  counts.exited = false;
  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) loop_child(cg.procs().c_str(), file.c_str(), seconds, ready[1], go[0]);
  counts.child = pid;
  ::close(ready[1]);
  ::close(go[0]);
  Run run;
  char in = 0;
  const bool entered = ::read(ready[0], &in, 1) == 1 && in == 'y';
  const auto t0 = Clock::now();
  const bool ok = entered && ::write(go[1], "g", 1) == 1 &&
                  ::read(ready[0], &run.opens, sizeof run.opens) == sizeof run.opens;
  run.seconds = seconds_since(t0);
  ::close(go[1]);
  ::close(ready[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "monitor_bench: the child failed (status %d)\n", status);
    return std::nullopt;
  }
  for (int i = 0; i < 3000 && !counts.exited; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const int64_t t0_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
  run.drain_seconds = counts.file_events > 0 ? (counts.last_ns - t0_ns) / 1e9 : run.seconds;
  return run;
}

} // namespace

int main(int argc, char** argv) {
  int seconds = 3;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[++i]);
  if (::geteuid() != 0) {
    std::puts("SKIP: monitor_bench needs root (BPF programs, cgroups)");
    return 77;
  }
  auto own = corral::testing::ScratchCgroup::make("corral-monitor-bench");
  auto other = corral::testing::ScratchCgroup::make("corral-monitor-bench");
  if (!own || !other) {
    std::fprintf(stderr, "monitor_bench: %s\n", (own ? other : own).error().to_string().c_str());
    return 1;
  }
  const std::string file = "/etc/passwd"; // any existing file
  Counts counts;
  Monitor::Options o;
  o.on_event = [&counts](const Event& e) {
    if (e.process.tgid != counts.child) return;
    if (e.kind == Kind::File) {
      counts.file_events.fetch_add(1, std::memory_order_relaxed);
      counts.last_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
              .count();
    } else if (e.kind == Kind::Exit) {
      counts.exited = true;
    }
  };
  auto m = Monitor::start(o);
  if (!m) {
    std::fprintf(stderr, "monitor_bench: %s\n", m.error().to_string().c_str());
    return 1;
  }
  Monitor& mon = **m;
  const auto file_kind = static_cast<size_t>(Kind::File);

  const auto detached = run_child(**own, file, seconds, counts);
  (void)mon.set_visibility((*other)->id(), corral::monitor::kVisibleFile);
  const auto not_visible = run_child(**own, file, seconds, counts);
  const uint64_t dropped_before = mon.stats().dropped[file_kind];
  (void)mon.set_visibility((*own)->id(), corral::monitor::kVisibleFile);
  const auto visible = run_child(**own, file, seconds, counts);
  const uint64_t delivered = counts.file_events;
  const uint64_t dropped = mon.stats().dropped[file_kind] - dropped_before;
  mon.clear_visibility();
  m->reset(); // the monitor goes before the cgroups
  if (!detached || !not_visible || !visible) return 1;

  std::printf("monitor_opens_per_s_detached %.0f\n", detached->opens / detached->seconds);
  std::printf("monitor_opens_per_s_not_visible %.0f\n", not_visible->opens / not_visible->seconds);
  std::printf("monitor_opens_per_s_visible %.0f\n", visible->opens / visible->seconds);
  std::printf("monitor_file_events_per_s %.0f\n", delivered / visible->drain_seconds);
  std::printf("monitor_opens_made %llu\n", static_cast<unsigned long long>(visible->opens));
  std::printf("monitor_events_delivered %llu\n", static_cast<unsigned long long>(delivered));
  std::printf("monitor_dropped %llu\n", static_cast<unsigned long long>(dropped));
  return 0;
}
