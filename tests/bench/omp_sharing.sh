#!/usr/bin/env bash
# Fairness under CPU sharing (launch/omp_policy.h): the median step time of `sinkhorn bench` for one
# process alone and for two processes started together on the same cores, with sinkhorn's OpenMP
# waiting policy (passive: set by sinkhorn when the user sets none) and with libgomp's default
# spinning (GOMP_SPINCOUNT=300000, which sinkhorn leaves alone). Never part of ctest: the figures
# only mean something on an otherwise idle machine (check `uptime` first; the script prints it).
#
# Usage: tests/bench/omp_sharing.sh [--steps N] [--threads N] [--build DIR] [WORKLOAD.toml]
#   defaults: 10 timed steps (2 warm-up), OMP_NUM_THREADS = nproc, build/, tests/bench/workloads/small.toml
# Prints one table row per policy: alone s/step, the two shared s/step, and shared / alone (2.0
# means a fair half each; the spinning default was ~24 on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
steps=10 threads=$(nproc) build=$root/build workload=$here/workloads/small.toml
while (($#)); do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) workload=$1; shift ;;
  esac
done
bin=$build/sinkhorn
[ -x "$bin" ] || { echo "no $bin (build first)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { python3 -c 'import json,sys; print("%.3f" % json.loads(open(sys.argv[1]).read().splitlines()[-1])["step_s_median"])' "$1"; }
bench() {  # OUT_FILE ENV...
  local out=$1; shift
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_NUM_THREADS="$threads" "$@" \
    "$bin" bench "$workload" --steps "$steps" --warmup 2 --quiet >"$out" 2>/dev/null
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') / $(nproc) cores / OMP_NUM_THREADS=$threads"
echo "load before: $(uptime | sed 's/.*load average: //')"
echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'); workload: $(basename "$workload"), $steps timed steps"
echo
echo "| policy | alone s/step | two at once s/step (A, B) | shared / alone |"
echo "| --- | --- | --- | --- |"
for policy in passive spin; do
  envs=()
  [ $policy = spin ] && envs=(GOMP_SPINCOUNT=300000)
  bench "$tmp/alone.json" "${envs[@]}"
  bench "$tmp/a.json" "${envs[@]}" & pa=$!
  bench "$tmp/b.json" "${envs[@]}" & pb=$!
  wait $pa $pb
  alone=$(median "$tmp/alone.json") a=$(median "$tmp/a.json") b=$(median "$tmp/b.json")
  ratio=$(python3 -c "print('%.2f' % ((($a) + ($b)) / 2 / ($alone)))")
  name=$([ $policy = passive ] && echo "passive (sinkhorn's default)" || echo "spin (libgomp default, GOMP_SPINCOUNT=300000)")
  echo "| $name | $alone | $a, $b | $ratio |"
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
