#!/usr/bin/env bash
# Sets up a fresh machine, builds everything (CUDA backend too when the toolkit is present) and
# runs the whole test suite through ctest. Usage: bash launch/scripts/test.sh [ctest args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash launch/scripts/setup.sh
build=${SK_BUILD_DIR:-build}
jobs=${SK_JOBS:-$(nproc)}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
