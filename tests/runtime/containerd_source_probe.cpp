// Runs a ContainerdSource against a containerd socket and prints what it reports, one line
// each, for containerd_source_test.sh to check:
//   UPSERT <unix ns> id=.. ns=.. rtns=.. pod=.. name=.. pid=.. mntns=.. pidns=.. cgroup=..
//          root=.. labels=k=v,k=v
//   REMOVE <unix ns> id=..
//   LOG <unix ns> <message>
//   STOPPED <milliseconds stop() took>      (after SIGTERM or SIGINT)
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <string>

#include "workload/containerd/containerd_source.h"

namespace {

std::mutex out_mu;

long long unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void emit(const std::string& line) {
  std::lock_guard lock(out_mu);
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

std::string describe(const corral::workload::Workload& w) {
  std::string labels;
  for (const auto& [k, v] : w.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
  return "id=" + w.id + " ns=" + w.namespace_name + " rtns=" + w.runtime_namespace +
         " pod=" + w.pod + " name=" + w.name + " pid=" + std::to_string(w.init_pid) +
         " mntns=" + std::to_string(w.mntns_inode) + " pidns=" + std::to_string(w.pidns_inode) +
         " cgroup=" + std::to_string(w.cgroup_id) + " root=" + w.root_path + " labels=" + labels;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONTAINERD_SOCKET\n", argv[0]);
    return 2;
  }
  // Block the stop signals before any thread starts, so that only sigwait() sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  corral::workload::ContainerdSource::Options opts;
  opts.socket = argv[1];
  opts.upsert = [](const corral::workload::Workload& w) {
    emit("UPSERT " + std::to_string(unix_ns()) + " " + describe(w));
  };
  opts.remove = [](const std::string& id) {
    emit("REMOVE " + std::to_string(unix_ns()) + " id=" + id);
  };
  opts.log = [](const std::string& msg) { emit("LOG " + std::to_string(unix_ns()) + " " + msg); };
  auto source = corral::workload::ContainerdSource::make(std::move(opts));
  if (!source) {
    std::fprintf(stderr, "%s\n", source.error().to_string().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  const auto t0 = std::chrono::steady_clock::now();
  (*source)->stop();
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  emit("STOPPED " + std::to_string(ms.count()));
  return 0;
}
