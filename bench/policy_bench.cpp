// The cost of a large policy in the agent before any kernel work (issue 13: a 100,000-rule
// policy applies in <= 1 s end to end): parsing and validating its YAML, and compiling it
// into one workload's RuleSet. The policy is bench/bigpolicy.awk's, the one the runtime
// benchmark's `bigpolicy` figure applies.
#include <cstdio>
#include <map>
#include <string>

#include <benchmark/benchmark.h>
#include <malloc.h>

#include "policy/parser.h"
#include "policy/ruleset.h"

namespace {

using namespace corral::policy;

std::string generate(int rules) {
  const std::string cmd =
      "awk -v rules=" + std::to_string(rules) + " -f " CORRAL_SOURCE_DIR "/bench/bigpolicy.awk";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[65536];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

const std::string& policy_text(int rules) {
  static std::map<int, std::string> texts;
  auto& t = texts[rules];
  if (t.empty()) t = generate(rules);
  return t;
}

// Bytes the heap holds now (allocated, not free).
double heap_bytes() {
  return static_cast<double>(::mallinfo2().uordblks + ::mallinfo2().hblkhd);
}

Workload bench_workload() {
  Workload w;
  w.name = "bench";
  w.namespace_name = "corral-test";
  w.labels = {{"app", "bench"}};
  return w;
}

void bm_parse(benchmark::State& state) {
  const std::string& text = policy_text(static_cast<int>(state.range(0)));
  size_t rules = 0;
  for (auto _ : state) {
    const auto parsed = parse_policies(text, "big.yaml");
    if (!parsed.ok() || parsed.policies.empty()) {
      state.SkipWithError("the generated policy does not parse");
      return;
    }
    rules = parsed.policies[0]->rules.size();
  }
  state.counters["rules"] = static_cast<double>(rules);
  const double before = heap_bytes();
  const auto kept = parse_policies(text, "big.yaml");
  state.counters["MiB_kept"] = (heap_bytes() - before) / (1 << 20);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void bm_compile(benchmark::State& state) {
  const auto parsed = parse_policies(policy_text(static_cast<int>(state.range(0))), "big.yaml");
  if (!parsed.ok()) {
    state.SkipWithError("the generated policy does not parse");
    return;
  }
  const Workload w = bench_workload();
  Settings s;
  s.postures.file = Posture::Block;
  // As the agent compiles: every path is offered to the resolver (here, none is a symlink).
  const PathResolver resolve = [](const std::string&) { return std::optional<std::string>(); };
  size_t rules = 0;
  for (auto _ : state) {
    const auto rs = compile(parsed.policies, w, s, resolve);
    rules = rs->rule_count();
  }
  state.counters["rules"] = static_cast<double>(rules);
  const double before = heap_bytes();
  const auto kept = compile(parsed.policies, w, s, resolve);
  state.counters["MiB_kept"] = (heap_bytes() - before) / (1 << 20);
}

} // namespace

BENCHMARK(bm_parse)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(bm_compile)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
