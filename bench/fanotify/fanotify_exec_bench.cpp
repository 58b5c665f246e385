// How much fanotify enforcement adds to exec: a loop of N execs of /bin/true inside a
// sandbox (its own mount and pid namespaces), with no enforcement, with the kernel cache
// (ignore marks) and without it, under an allow-list policy (the seed's shape: posture
// block, ld-linux not allowed on its own) and a block-list policy (nothing allowed-listed,
// so everything allowed is cacheable). Modes alternate within each run; medians over runs.
// Then the first exec of a binary in a fresh group (cold: nothing cached), in µs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "enforce/fanotify/fanotify_enforcer.h"
#include "enforce/fanotify/root_fs.h"
#include "policy/parser.h"
#include "sandbox.h"

namespace {

using namespace corral;

const std::string kAllowList = testing::process_policy("allow-true", "/bin/true", "Allow");
const std::string kBlockList = testing::process_policy("block-chroot", "/usr/sbin/chroot", "Block");

// The enforcer configurations: ignore marks, none, ignore marks + the exec backstop (which
// lets ld.so be cached under an allow-list).
enum Config { kCache, kNoCache, kBackstop };

struct Mode {
  std::string name;
  const char* policy; // nullptr: no enforcement
  Config config;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Owned here so that die() can remove it (std::exit does not unwind main's locals).
std::unique_ptr<testing::Sandbox> g_sandbox;
std::map<Config, std::unique_ptr<enforce::FanotifyEnforcer>> g_enforcers;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fanotify_exec_bench: %s\n", what.c_str());
  g_enforcers.clear();
  g_sandbox.reset();
  std::exit(1);
}

std::shared_ptr<const policy::RuleSet> rules_for(const char* yaml, const workload::Workload& w) {
  policy::Settings settings;
  settings.postures.file = policy::Posture::Block;
  const auto parsed = policy::parse_policies(yaml, "bench.yaml");
  if (!parsed.ok()) die("bad policy");
  return policy::compile(parsed.policies, w.policy_view(), settings,
                         enforce::fanotify::root_resolver(w.init_pid));
}

// Runs `n` execs of /bin/true with `mode` enforced in a fresh group; returns ns.
uint64_t measure(testing::Sandbox& sb, const workload::Workload& w, enforce::Enforcer* e,
                 const Mode& mode, int n) {
  if (mode.policy != nullptr) {
    if (auto r = e->enforce(w, rules_for(mode.policy, w)); !r) die(r.error().to_string());
  }
  const auto r = sb.loop({"/bin/true"}, n);
  if (!r) die(r.error().to_string());
  if (r->exit_code != 0 || r->exec_errno != 0) {
    die("exec loop failed in mode " + mode.name + ": exit " + std::to_string(r->exit_code) +
        ", exec errno " + std::to_string(r->exec_errno) + " (" + std::strerror(r->exec_errno) +
        ")");
  }
  if (mode.policy != nullptr) e->release(w.id);
  return r->nanos;
}

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

} // namespace

int main(int argc, char** argv) {
  if (!testing::running_as_root_or_explain("fanotify_exec_bench")) return 77;
  const int execs = arg(argc, argv, "--execs", 2000);
  const int runs = arg(argc, argv, "--runs", 7);
  const int cold_samples = arg(argc, argv, "--cold", 101);

  testing::SandboxOptions so;
  so.programs = {"/usr/bin/true", "/usr/sbin/chroot"};
  auto made = testing::Sandbox::make(so); // before any enforcer thread exists
  if (!made) die(made.error().to_string());
  g_sandbox = std::move(*made);
  testing::Sandbox& sb = *g_sandbox;
  const auto w = sb.workload("bench");
  auto& enforcers = g_enforcers;
  for (const Config config : {kCache, kNoCache, kBackstop}) {
    enforce::FanotifyEnforcer::Options o;
    o.cache = config != kNoCache;
    o.exec_backstop = config == kBackstop;
    o.log = [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); };
    auto e = enforce::FanotifyEnforcer::make(std::move(o));
    if (!e) die(e.error().to_string());
    if (config == kBackstop && !(*e)->exec_backstop()) die("the exec backstop cannot load");
    enforcers[config] = std::move(*e);
  }

  const std::vector<Mode> modes = {{"none", nullptr, kCache},
                                   {"allow-list, backstop", kAllowList.c_str(), kBackstop},
                                   {"allow-list, cache", kAllowList.c_str(), kCache},
                                   {"allow-list, no cache", kAllowList.c_str(), kNoCache},
                                   {"block-list, cache", kBlockList.c_str(), kCache},
                                   {"block-list, no cache", kBlockList.c_str(), kNoCache}};
  std::map<std::string, std::vector<double>> ms;
  std::map<std::string, uint64_t> events;
  for (int r = 0; r < runs; ++r) {
    for (const auto& m : modes) {
      auto* e = enforcers[m.config].get();
      const auto before = e->counters().events;
      ms[m.name].push_back(static_cast<double>(measure(sb, w, e, m, execs)) / 1e6);
      if (m.policy != nullptr) events[m.name] = e->counters().events - before;
    }
  }
  std::printf("exec loop: %d x /bin/true (dynamic: exec + ld-linux), median of %d runs\n", execs,
              runs);
  std::printf("%-22s %10s %10s %8s %14s\n", "mode", "ms", "us/exec", "ratio", "events/run");
  const double base = median(ms["none"]);
  for (const auto& m : modes) {
    const double t = median(ms[m.name]);
    std::printf("%-22s %10.1f %10.1f %8.3f %14llu\n", m.name.c_str(), t, t * 1000 / execs, t / base,
                static_cast<unsigned long long>(events[m.name]));
  }

  // Cold: one exec in a group that has seen nothing (2 round trips: true and ld-linux).
  std::vector<double> cold_none, cold_enforced;
  for (int i = 0; i < cold_samples; ++i) {
    cold_none.push_back(static_cast<double>(measure(sb, w, nullptr, modes[0], 1)) / 1e3);
    cold_enforced.push_back(
        static_cast<double>(measure(sb, w, enforcers[kCache].get(), modes[2], 1)) / 1e3);
  }
  const double cn = median(cold_none), ce = median(cold_enforced);
  std::printf("\nfirst exec of /bin/true in a fresh group (allow-list), median of %d:\n",
              cold_samples);
  std::printf("  no enforcement %.1f us, enforced %.1f us: +%.1f us for its 2 round trips\n", cn,
              ce, ce - cn);
  const auto c = enforcers[kCache]->counters();
  std::printf("\ncounters (cache): events %llu denied %llu errors_allowed %llu timeouts_allowed "
              "%llu timeouts_denied %llu\n",
              static_cast<unsigned long long>(c.events), static_cast<unsigned long long>(c.denied),
              static_cast<unsigned long long>(c.errors_allowed),
              static_cast<unsigned long long>(c.timeouts_allowed),
              static_cast<unsigned long long>(c.timeouts_denied));
  enforcers.clear();
  g_sandbox.reset();
  return 0;
}
