#!/usr/bin/env bash
# Configures and builds Corral into build/ (or $CORRAL_BUILD_DIR).
#   bash scripts/build.sh [--progress]   # --progress: one line every 10% instead of CMake's output
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CORRAL_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CORRAL_CMAKE_ARGS:-} >/dev/null
if [[ ${1:-} != --progress ]]; then
  exec cmake --build "$build" -j"$(nproc)"
fi
echo "building Corral (about 10 minutes the first time on 2 cores; full output in $build/build.log)..."
if ! cmake --build "$build" -j"$(nproc)" 2>&1 | tee "$build/build.log" | awk '/^\[ *[0-9]+%\]/ {
  p = substr($0, 2, index($0, "%") - 2) + 0
  if (p >= shown + 10) { printf "  %d%%\n", p; shown = p; fflush() } }'; then
  grep -E -A5 'error|Error' "$build/build.log" | tail -n 40 >&2
  echo "build failed (full output: $build/build.log)" >&2
  exit 1
fi
