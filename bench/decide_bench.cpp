// decide() cost against the number of rules in a workload's RuleSet (issue: <= 300 ns at
// 100,000 rules, and within 2x of the 10-rule figure). Rules are a third exact paths, a third
// recursive directories and a third glob patterns; lookups hit each kind, or miss all.
#include <string>

#include <benchmark/benchmark.h>

#include "policy/decide.h"

namespace {

using namespace corral::policy;

// `locked`: the policy carries corral.dev/lock and a second, unlocked policy with one Block
// rule selects the workload too, so that decide() judges each access twice (issue 12).
std::shared_ptr<const RuleSet> make_ruleset(int n, bool locked = false) {
  auto p = std::make_shared<Policy>();
  p->locked = locked;
  p->name = "bench";
  p->namespace_name = "default";
  for (int i = 0; i < n; ++i) {
    Rule r;
    r.category = Category::File;
    r.action = i % 7 == 0 ? Action::Block : Action::Allow;
    r.origin.field = "spec.file[" + std::to_string(i) + "]";
    const std::string id = std::to_string(i);
    switch (i % 3) {
    case 0:
      r.target = Target::Path;
      r.value = "/data/app" + id + "/file" + id + ".txt";
      break;
    case 1:
      r.target = Target::Dir;
      r.recursive = true;
      r.value = "/srv/d" + id + "/";
      break;
    default:
      r.target = Target::Pattern;
      r.value = "/logs/p" + id + "/*.log";
      break;
    }
    p->rules.push_back(std::move(r));
  }
  Workload w;
  Settings s;
  s.postures.file = Posture::Block;
  std::vector<PolicyPtr> policies{p};
  if (locked) {
    auto q = std::make_shared<Policy>();
    q->name = "other";
    q->namespace_name = "default";
    Rule r;
    r.category = Category::File;
    r.target = Target::Path;
    r.value = "/data/other";
    r.origin.field = "spec.file.matchPaths[0]";
    q->rules.push_back(std::move(r));
    policies.push_back(q);
  }
  return compile(policies, w, s);
}

// The n/2-th rule of each kind, so that the hit is neither first nor last.
std::string target(const std::string& kind, int n) {
  const auto mid = [n](int k) { return std::to_string((n / 2) / 3 * 3 + k); };
  if (kind == "exact") return "/data/app" + mid(0) + "/file" + mid(0) + ".txt";
  if (kind == "dir") return "/srv/d" + mid(1) + "/cache/objects/blob.bin";
  if (kind == "glob") return "/logs/p" + mid(2) + "/today.log";
  return "/usr/lib/x86_64-linux-gnu/libc.so.6"; // miss: falls to the default posture
}

void bm_decide(benchmark::State& state, const std::string& kind, bool locked = false) {
  const int n = static_cast<int>(state.range(0));
  const auto rs = make_ruleset(n, locked);
  const std::string path = target(kind, n);
  const Access access{Category::File, path, "/usr/bin/bash", false, true};
  const bool expect_rule = kind != "miss";
  if ((decide(*rs, access).rule != nullptr) != expect_rule) {
    state.SkipWithError("benchmark set-up: the lookup does not hit the intended rule");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(decide(*rs, access));
  state.counters["rules"] = static_cast<double>(rs->rule_count());
}

} // namespace

BENCHMARK_CAPTURE(bm_decide, exact_hit, std::string("exact"))->Arg(10)->Arg(1000)->Arg(100000);
BENCHMARK_CAPTURE(bm_decide, dir_hit, std::string("dir"))->Arg(10)->Arg(1000)->Arg(100000);
BENCHMARK_CAPTURE(bm_decide, glob_hit, std::string("glob"))->Arg(10)->Arg(1000)->Arg(100000);
BENCHMARK_CAPTURE(bm_decide, miss, std::string("miss"))->Arg(10)->Arg(1000)->Arg(100000);

// A locked workload: the same lookups, each judged by all the rules and by the lock's alone.
BENCHMARK_CAPTURE(bm_decide, locked_exact_hit, std::string("exact"), true)->Arg(10)->Arg(100000);
BENCHMARK_CAPTURE(bm_decide, locked_miss, std::string("miss"), true)->Arg(10)->Arg(100000);

BENCHMARK_MAIN();
