#!/usr/bin/env bash
# Sets up a fresh machine, builds everything (CUDA backend too when the toolkit is present), runs
# the whole test suite through ctest, then the fuzz targets (tests/fuzz/run.sh: a clang build in
# build-fuzz/, each target SK_FUZZ_SECONDS = 30 s; 0 skips them).
# Usage: bash launch/scripts/test.sh [ctest args...]
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
if [ "${SK_FUZZ_SECONDS:-30}" != 0 ]; then
  SK_JOBS=$jobs bash tests/fuzz/run.sh
fi
