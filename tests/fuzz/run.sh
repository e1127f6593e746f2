#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/CMakeLists.txt: clang, ASan + UBSan + LeakSanitizer) in
# their own build folder and runs each for a bounded time, starting from the seed corpus in
# tests/fuzz/corpus/<target>/. Fails (exit 1) on any crash, leak, sanitizer report, timeout or
# out-of-memory; the input that caused it is kept under $SK_FUZZ_BUILD_DIR/artifacts/.
#   SK_FUZZ_SECONDS   seconds per target (default 30; 0 = build only)
#   SK_FUZZ_BUILD_DIR build folder (default build-fuzz)
#   SK_FUZZ_TARGETS   targets to run (default: all four)
# Usage: bash tests/fuzz/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${SK_FUZZ_BUILD_DIR:-build-fuzz}
secs=${SK_FUZZ_SECONDS:-30}
targets=${SK_FUZZ_TARGETS:-safetensors config checkpoint_json byte_dataset token_shard}
cxx=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$cxx" ] || { echo "fuzz: clang++ not found (launch/scripts/setup.sh installs clang-14)"; exit 1; }
cmake -S tests/fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE= >/dev/null
cmake --build "$build" -j "${SK_JOBS:-$(nproc)}"
[ "$secs" -gt 0 ] || exit 0
mkdir -p "$build/artifacts"
rc=0
for t in $targets; do
  work=$(mktemp -d)  # new inputs go here; the seed corpus in the repository is only read
  echo "fuzz: $t for ${secs}s"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0 \
       UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 OMP_NUM_THREADS=1 TMPDIR="$work" \
       "$build/fuzz_$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
         -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$work" "tests/fuzz/corpus/$t" \
         >"$build/fuzz_$t.log" 2>&1; then
    echo "fuzz: $t FAILED (log: $build/fuzz_$t.log; input: $build/artifacts/$t-*)"
    tail -n 40 "$build/fuzz_$t.log"
    rc=1
  else
    grep -E "^stat::number_of_executed_runs|^Done" "$build/fuzz_$t.log" | tr '\n' ' '; echo
  fi
  rm -rf "$work"
done
exit $rc
