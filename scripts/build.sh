#!/usr/bin/env bash
# Configures and builds Corral into build/ (or $CORRAL_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CORRAL_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CORRAL_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
