// A neighbour's exec latency during another workload's flood (issue 7, "overload"): two
// enforced sandboxes; F floods new-file opens under file rules (every open a new inode, so
// nothing is cached; --shells shells, 4 by default), B runs an exec loop of /bin/true under an
// allow-list with posture block (ld-linux, not allowed on its own, asks on every exec). B's loop is
// timed without and with F's flood, alternating within the run; the ratio of the medians is the
// figure (target <= 2). Also checks that none of B's forbidden execs passed meanwhile.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "enforce/fanotify/fanotify_enforcer.h"
#include "enforce/fanotify/root_fs.h"
#include "policy/parser.h"
#include "sandbox.h"

namespace {

using namespace corral;

const char* kFileRules = R"(
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: flooder-files
spec:
  selector:
    matchLabels:
      app: sandbox
  file:
    matchPaths:
    - path: /data/secret.txt
  action: Block
)";

// `shells` shells each create new files until /data/stop exists, removing them every 500.
std::string flood_script(int shells) {
  return "for ((t = 0; t < " + std::to_string(shells) +
         "; t++)); do (i=0; while [ ! -e /data/stop ]; do : > /data/f$t.$i; "
         "i=$((i+1)); ((i % 500 == 0)) && rm -f /data/f$t.*; done) & done; wait";
}

std::unique_ptr<testing::Sandbox> g_b, g_f;
std::unique_ptr<enforce::FanotifyEnforcer> g_enforcer;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fanotify_flood_bench: %s\n", what.c_str());
  g_enforcer.reset();
  g_b.reset();
  g_f.reset();
  std::exit(1);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void enforce_on(const workload::Workload& w, const std::string& yaml) {
  policy::Settings settings;
  settings.postures.file = policy::Posture::Block;
  const auto parsed = policy::parse_policies(yaml, "bench.yaml");
  if (!parsed.ok()) die("bad policy");
  const auto rules = policy::compile(parsed.policies, w.policy_view(), settings,
                                     enforce::fanotify::root_resolver(w.init_pid));
  if (auto r = g_enforcer->enforce(w, rules); !r) die(r.error().to_string());
}

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

// B's loop, ms.
double b_loop(int n) {
  const auto r = g_b->loop({"/bin/true"}, n);
  if (!r || r->exit_code != 0 || r->exec_errno != 0) die("B's exec loop failed");
  return static_cast<double>(r->nanos) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  if (!testing::running_as_root_or_explain("fanotify_flood_bench")) return 77;
  const int execs = arg(argc, argv, "--execs", 1000);
  const int runs = arg(argc, argv, "--runs", 5);
  const int threads = arg(argc, argv, "--threads", 2);
  const int shells = arg(argc, argv, "--shells", 4);

  testing::SandboxOptions bo;
  bo.programs = {"/usr/bin/true", "/usr/sbin/chroot"};
  testing::SandboxOptions fo;
  fo.programs = {"/usr/bin/bash", "/usr/bin/rm"};
  fo.files = {{"/data/seed.txt", "x\n", 0644}};
  auto b = testing::Sandbox::make(bo); // before any enforcer thread exists
  if (!b) die(b.error().to_string());
  g_b = std::move(*b);
  auto f = testing::Sandbox::make(fo);
  if (!f) die(f.error().to_string());
  g_f = std::move(*f);
  enforce::FanotifyEnforcer::Options o;
  o.responder_threads = static_cast<size_t>(threads);
  o.log = [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); };
  auto e = enforce::FanotifyEnforcer::make(std::move(o));
  if (!e) die(e.error().to_string());
  g_enforcer = std::move(*e);
  const auto bw = g_b->workload("neighbour");
  const auto fw = g_f->workload("flooder");
  enforce_on(bw, testing::process_policy("allow-true", "/bin/true", "Allow"));
  enforce_on(fw, kFileRules);
  const std::string stop = "/proc/" + std::to_string(fw.init_pid) + "/root/data/stop";

  std::vector<double> quiet, flooded;
  uint64_t flood_events = 0, b_events = 0;
  int forbidden_passed = 0, forbidden_tried = 0;
  b_loop(50); // warm: B's /bin/true is cached after its first exec
  for (int r = 0; r < runs; ++r) {
    auto before = g_enforcer->counters().events;
    quiet.push_back(b_loop(execs));
    b_events = g_enforcer->counters().events - before;
    ::unlink(stop.c_str());
    std::atomic<bool> flooding{true};
    std::thread flood([&] {
      (void)g_f->run({"/usr/bin/bash", "-c", flood_script(shells)});
      flooding = false;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300)); // the flood at full speed
    before = g_enforcer->counters().events;
    flooded.push_back(b_loop(execs));
    for (int i = 0; i < 10; ++i, ++forbidden_tried) {
      const auto c = g_b->run({"/usr/sbin/chroot", "--version"});
      if (c && c->exec_errno != EPERM) ++forbidden_passed;
    }
    flood_events = g_enforcer->counters().events - before;
    if (!flooding) die("the flood ended before B's loop did");
    std::ofstream(stop) << "stop\n";
    flood.join();
  }
  const double q = median(quiet), fl = median(flooded);
  const auto c = g_enforcer->counters();
  std::printf("neighbour's exec loop: %d x /bin/true under an allow-list (posture block), "
              "%d responder threads, %d flooding shells, median of %d runs\n",
              execs, threads, shells, runs);
  std::printf("  without the flood %8.1f ms (%6.1f us/exec, %llu events)\n", q, q * 1000 / execs,
              static_cast<unsigned long long>(b_events));
  std::printf("  with the flood    %8.1f ms (%6.1f us/exec; %llu events answered meanwhile)\n", fl,
              fl * 1000 / execs, static_cast<unsigned long long>(flood_events));
  std::printf("  ratio             %8.2f (target <= 2)\n", q > 0 ? fl / q : 0);
  std::printf("  forbidden execs of the neighbour during the flood: %d of %d passed\n",
              forbidden_passed, forbidden_tried);
  std::printf("counters: events %llu denied %llu timeouts_allowed %llu timeouts_denied %llu\n",
              static_cast<unsigned long long>(c.events), static_cast<unsigned long long>(c.denied),
              static_cast<unsigned long long>(c.timeouts_allowed),
              static_cast<unsigned long long>(c.timeouts_denied));
  g_enforcer.reset();
  g_b.reset();
  g_f.reset();
  return forbidden_passed == 0 ? 0 : 1;
}
