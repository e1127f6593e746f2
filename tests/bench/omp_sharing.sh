#!/usr/bin/env bash
# Fairness under CPU sharing (launch/omp_policy.h): the median step time of `sinkhorn bench` for one
# process alone and for two processes started together on the same cores, for several OpenMP
# waiting policies:
#   default  what sinkhorn sets when the user sets nothing (GOMP_SPINCOUNT=1000)
#   passive  OMP_WAIT_POLICY=passive (sleep at once)
#   spin     libgomp's own default (GOMP_SPINCOUNT=300000), which sinkhorn leaves alone when set
#   spinN    spin N iterations before sleeping (GOMP_SPINCOUNT=N), e.g. spin10000
# The policies are measured in turn, --runs times over (interleaved, so a disturbance hits all of
# them alike); each cell is the median over the runs of the runs' median step times. Never part of
# ctest: figures only mean something on an otherwise idle machine (the script prints `uptime`).
#
# Usage: tests/bench/omp_sharing.sh [--runs N] [--steps N] [--threads N] [--build DIR]
#                                   [--policies "default spin passive spin10000"] [WORKLOAD.toml]
#   defaults: 3 runs, 10 timed steps (2 warm-up), OMP_NUM_THREADS = nproc, build/, small.toml
# "shared / alone" = mean of the two shared step times / the alone step time: 2.0 is a fair half
# each, below 2 the two fill each other's idle time, far above 2 they fight.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=3 steps=10 threads=$(nproc) build=$root/build workload=$here/workloads/small.toml policies="default spin passive"
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) workload=$1; shift ;;
  esac
done
bin=$build/sinkhorn
[ -x "$bin" ] || { echo "no $bin (build first)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

envs_of() {
  case $1 in
    default) echo "" ;;
    passive) echo "OMP_WAIT_POLICY=passive" ;;
    spin) echo "GOMP_SPINCOUNT=300000" ;;
    spin[0-9]*) echo "GOMP_SPINCOUNT=${1#spin}" ;;
    *) echo "unknown policy $1" >&2; exit 1 ;;
  esac
}
median_step() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["step_s_median"])' "$1"; }
bench() {  # OUT_FILE POLICY
  # shellcheck disable=SC2046
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_NUM_THREADS="$threads" $(envs_of "$2") \
    "$bin" bench "$workload" --steps "$steps" --warmup 2 --quiet >"$1" 2>/dev/null
  median_step "$1"
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') / $(nproc) cores / OMP_NUM_THREADS=$threads"
echo "date: $(date -u +%FT%TZ); load before: $(uptime | sed 's/.*load average: //')"
echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'); workload: $(basename "$workload"), $steps timed steps, $runs runs"
for r in $(seq 1 "$runs"); do
  for p in $policies; do
    bench "$tmp/x.json" "$p" >>"$tmp/$p.alone"
    bench "$tmp/a.json" "$p" >"$tmp/a.out" & pa=$!
    bench "$tmp/b.json" "$p" >"$tmp/b.out" & pb=$!
    wait $pa $pb
    cat "$tmp/a.out" >>"$tmp/$p.shared"
    cat "$tmp/b.out" >>"$tmp/$p.shared"
  done
done
echo
echo "| policy | alone s/step | two at once s/step | shared / alone |"
echo "| --- | --- | --- | --- |"
for p in $policies; do
  python3 - "$p" "$(envs_of "$p")" "$tmp/$p.alone" "$tmp/$p.shared" <<'PY'
import statistics, sys
p, env, a, s = sys.argv[1], sys.argv[2] or "GOMP_SPINCOUNT=1000 (set by sinkhorn)", sys.argv[3], sys.argv[4]
alone = [float(x) for x in open(a)]
shared = [float(x) for x in open(s)]
ma, ms = statistics.median(alone), statistics.median(shared)
print(f"| {p}: {env} | {ma:.3f} ({min(alone):.3f}-{max(alone):.3f}) | {ms:.3f} ({min(shared):.3f}-{max(shared):.3f}) | {ms / ma:.2f} |")
PY
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
