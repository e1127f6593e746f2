#!/usr/bin/env bash
# Data-parallel gradient reduction benchmark on CPU ranks (never part of ctest): `sinkhorn train`
# on tests/bench/workloads/pipeline.toml with R replicas under mpirun, reading the trainer's own
# measurements from metrics.jsonl:
#   step s      median time between step records (elapsed), steps 2.. of each run
#   comm ms     time_comm: the exposed communication of a step (waiting for the last gradient
#               buckets after backward, the norm's host exchange, ZeRO-1's parameter all-gather)
#   bytes/step  comm_bytes: gradient-reduction bytes one rank sent in the last step
#   grad bytes  grad_bytes: the stage's (padded) f32 gradient buffer
#   optim bytes optimizer_state_bytes: AdamW m and v held by one rank
# Variants (each run interleaved with the others, medians over --runs):
#   one-shot    bucket_mb = 0: one reduction after the whole backward
#   overlapped  bucket_mb = 4: buckets reduced on the communication thread while backward runs
#   zero1       overlapped + zero_stage = 1 (reduce-scatter, sharded AdamW, all-gather)
#   bf16        overlapped + grad_reduce_dtype = "bf16"
# Usage: tests/bench/grad_sync_bench.sh [--replicas R] [--runs N] [--steps N] [--build DIR]
# One OpenMP thread per rank; with more ranks than cores the communication thread competes with
# compute for the cores, so overlap gains show only on machines with a core to spare.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
root=$BENCH_ROOT
build=$root/build runs=3 replicas=2 steps=6
while (($#)); do
  case $1 in
    --replicas) replicas=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) bench_usage "$0"; exit 0 ;;
    *) echo "grad_sync_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$(bench_binary "$build" sinkhorn)
cfg=$here/workloads/pipeline.toml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench_header "$replicas replicas, $steps steps, $runs runs"

variants=(one-shot overlapped zero1 bf16)
sets_of() {
  case $1 in
    one-shot) echo "--set parallel.bucket_mb=0" ;;
    overlapped) echo "--set parallel.bucket_mb=4" ;;
    zero1) echo "--set parallel.bucket_mb=4 --set parallel.zero_stage=1" ;;
    bf16) echo "--set parallel.bucket_mb=4 --set parallel.grad_reduce_dtype=bf16" ;;
  esac
}
# one NAME VARIANT -> "step_s comm_ms comm_bytes grad_bytes optim_bytes"
one() {
  local d=$work/$1
  mkdir -p "$d"
  # shellcheck disable=SC2046
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$replicas" -x OMP_NUM_THREADS=1 "$bin" train "$cfg" \
    --set train.grad_accum=1 --set train.batch_size=$((2 * replicas)) --set train.steps="$steps" --set log.dir="$d" \
    $(sets_of "$2") > "$d/out.txt" 2>&1 || { cat "$d/out.txt" >&2; return 1; }
  $BENCH_PY - "$d" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
dts = [b["elapsed"] - a["elapsed"] for a, b in zip(recs, recs[1:])]
later = recs[1:]
print(f'{statistics.median(dts):.3f} {1e3 * statistics.median(r["time_comm"] for r in later):.1f} '
      f'{recs[-1]["comm_bytes"]} {recs[-1]["grad_bytes"]} {recs[-1]["optimizer_state_bytes"]}')
PY
}
declare -A step comm bytes grad optim
for r in $(seq "$runs"); do
  for v in "${variants[@]}"; do
    read -r s c b g o < <(one "$v-$r" "$v")
    step[$v]+="$s "; comm[$v]+="$c "; bytes[$v]=$b; grad[$v]=$g; optim[$v]=$o
  done
done
echo
echo "| variant | step s (median; min-max) | exposed comm ms | bytes sent / step / rank | / gradient bytes | AdamW state bytes / rank |"
echo "| --- | --- | --- | --- | --- | --- |"
for v in "${variants[@]}"; do
  ratio=$(awk -v b="${bytes[$v]}" -v g="${grad[$v]}" 'BEGIN {printf "%.3f", b / g}')
  echo "| $v | $(bench_median ${step[$v]}) ($(bench_range ${step[$v]})) | $(bench_median ${comm[$v]}) | ${bytes[$v]} | $ratio | ${optim[$v]} |"
done
echo
echo "(2 (R-1)/R = $(awk -v r="$replicas" 'BEGIN {printf "%.3f", 2 * (r - 1) / r}') for a ring all-reduce of f32 gradients)"
