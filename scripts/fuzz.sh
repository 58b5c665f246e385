#!/usr/bin/env bash
# The fuzz tier (TESTING.md): builds the libFuzzer targets with clang in their own tree and
# fuzzes the policy parser for a bounded time over a seed corpus (examples/*.yaml and
# tests/fuzz/corpus/) with a dictionary of KubeArmor keywords.
#
# Usage: scripts/fuzz.sh [BUILD_DIR]      BUILD_DIR defaults to build/fuzz
# Env:   CORRAL_FUZZ_SECONDS  how long to fuzz (default 60)
# Exit:  0 no finding; 1 a finding (crash, leak, timeout, out of memory, UB) or a failed
#        build; 77 clang or libFuzzer missing (a visible skip).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$root/build/fuzz}")
seconds=${CORRAL_FUZZ_SECONDS:-60}
name=fuzz_policy_parser

if ! command -v clang++ >/dev/null; then
  echo "$name: SKIP: clang++ not found (install clang and libclang-rt-dev)"
  exit 77
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, long) { return 0; }' |
  clang++ -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "$name: SKIP: clang++ cannot link -fsanitize=fuzzer (install libclang-rt-dev)"
  exit 77
fi

mkdir -p "$build"
echo "$name: building in $build"
if ! CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCORRAL_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "$name: FAIL: configure failed"
  exit 1
fi
if ! cmake --build "$build" --target policy_parser_fuzz -j "$(nproc)" >"$build/build.log" 2>&1; then
  tail -n 40 "$build/build.log" >&2
  echo "$name: FAIL: build failed (log: $build/build.log)"
  exit 1
fi

# The first corpus directory is libFuzzer's to grow; the seeds are read only. Findings
# from an earlier run are cleared so that the verdict is this run's.
run=$build/run
rm -rf "$run/seeds" "$run/artifacts"
mkdir -p "$run/corpus" "$run/seeds" "$run/artifacts"
cp "$root"/examples/*.yaml "$run/seeds/"

log=$run/fuzz.log
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$build/bin/policy_parser_fuzz" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -dict="$root/tests/fuzz/policy.dict" -artifact_prefix="$run/artifacts/" \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  "$run/corpus" "$run/seeds" "$root/tests/fuzz/corpus" >"$log" 2>&1
status=$?
set -e

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
execs=$(stat number_of_executed_units)
rate=$(stat average_exec_per_sec)
rss=$(stat peak_rss_mb)
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 || true)
findings=$(find "$run/artifacts" -type f | sort)

if ((status != 0)) || [[ -n $findings ]]; then
  grep -E '^(==[0-9]+==ERROR|SUMMARY|invariant violated|.*runtime error)' "$log" | head -n 20 >&2 || true
  tail -n 60 "$log" >&2
  echo "$name: FAIL (exit $status) after ${execs:-?} executions; ${cov:-no coverage line}"
  for f in $findings; do echo "$name: reproduce: $build/bin/policy_parser_fuzz $f"; done
  exit 1
fi
echo "$name: OK: ${execs:-?} executions in ${seconds} s (${rate:-?}/s), ${cov:-cov ?}," \
  "peak RSS ${rss:-?} MB, no findings (log: $log)"
