#!/usr/bin/env bash
# Pipeline benchmarks on CPU ranks (never part of ctest): `sinkhorn train` on
# tests/bench/workloads/pipeline.toml under mpirun, reading the trainer's own measurements from
# metrics.jsonl (bubble = the idle share of the pipeline's area, 1 - compute summed over ranks /
# (ranks x the longest rank's pipeline time), what (P-1)/(M+P-1) predicts; pipeline_wait = each
# rank's own waits for a peer / its own pipeline time, averaged over ranks; memory_bytes = the
# largest peak RSS over all ranks) and the `layout:` line (parameters per stage).
#
# Usage: tests/bench/pipeline_bench.sh [--bubble] [--memory] [--activations] [--runs N] [--build DIR]
#   --bubble       measured vs theoretical bubble, 1F1B and GPipe, P = 2, 4 and M = 1, 2, 4, 8
#                  (micro-batch fixed at 2 rows; steps 2..5 of each run, median)
#   --memory       per-rank parameters and peak RSS vs stages (P = 1, 2, 4; 1F1B, M = 4)
#   --activations  peak RSS vs micro-batches in flight (P = 2, M = 2, 4, 8, GPipe and 1F1B), for
#                  the reversible stack and, for contrast, the same model with reversible = false
#   (default: all three). One rank per stage, one OpenMP thread per rank; ranks beyond the cores
#   are oversubscribed (then the bubble is not meaningful: waiting ranks compete for the cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
root=$BENCH_ROOT
build=$root/build runs=1 modes=()
while (($#)); do
  case $1 in
    --bubble|--memory|--activations) modes+=("${1#--}"); shift ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) bench_usage "$0"; exit 0 ;;
    *) echo "pipeline_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
((${#modes[@]})) || modes=(bubble memory activations)
bin=$(bench_binary "$build" sinkhorn)
cfg=$here/workloads/pipeline.toml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench_header

# one NAME STAGES SCHEDULE M [--set ...] -> prints "bubble_median memory_max_MB step_s_median params_per_stage wait_median"
one() {
  local name=$1 p=$2 sched=$3 m=$4; shift 4
  local d=$work/$name
  mkdir -p "$d"
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$p" -x OMP_NUM_THREADS=1 "$bin" train "$cfg" \
    --set parallel.pipeline_stages="$p" --set parallel.schedule="$sched" --set train.grad_accum="$m" \
    --set train.batch_size=$((2 * m)) --set log.dir="$d" "$@" > "$d/out.txt" 2>&1 || { cat "$d/out.txt" >&2; return 1; }
  $BENCH_PY - "$d" <<'PY'
import json, re, statistics, sys
d = sys.argv[1]
recs = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"loss"' in l]
later = recs[1:] if len(recs) > 1 else recs
bub = statistics.median(r.get("bubble", 0.0) for r in later)
wait = statistics.median(r.get("pipeline_wait", 0.0) for r in later)
mem = max(r["memory_bytes"] for r in recs) / 2**20
prev = None
dts = []
for r in recs:
    if prev is not None: dts.append(r["elapsed"] - prev)
    prev = r["elapsed"]
step = statistics.median(dts[1:] if len(dts) > 1 else dts) if dts else float("nan")
lay = re.search(r"parameters per stage \[([^\]]*)\]", open(d + "/out.txt", errors="replace").read())
print(f"{bub:.4f} {mem:.1f} {step:.3f} {lay.group(1).replace(' ', '') if lay else '?'} {wait:.4f}")
PY
}

for mode in "${modes[@]}"; do
  case $mode in
    bubble)
      echo
      echo "| schedule | stages P | micro-batches M | theory (P-1)/(M+P-1) | measured bubble (median of runs) | ranks' own wait share | step s |"
      echo "| --- | --- | --- | --- | --- | --- | --- |"
      for sched in 1f1b gpipe; do for p in 2 4; do for m in 1 2 4 8; do
        bs=() ss=() ws=()
        for r in $(seq "$runs"); do
          read -r b mem s lay w < <(one "b-$sched-$p-$m-$r" $p $sched $m); bs+=("$b"); ss+=("$s"); ws+=("$w")
        done
        th=$(awk -v p=$p -v m=$m 'BEGIN {printf "%.1f%%", 100*(p-1)/(m+p-1)}')
        echo "| $sched | $p | $m | $th | $(awk -v b="$(bench_median "${bs[@]}")" 'BEGIN {printf "%.1f%%", 100*b}') | $(awk -v b="$(bench_median "${ws[@]}")" 'BEGIN {printf "%.1f%%", 100*b}') | $(bench_median "${ss[@]}") |"
      done; done; done ;;
    memory)
      echo
      echo "| stages P | parameters per stage | largest peak RSS over ranks (MB) | step s |"
      echo "| --- | --- | --- | --- |"
      for p in 1 2 4; do
        read -r b mem s lay w < <(one "m-$p" $p 1f1b 4)
        echo "| $p | $lay | $mem | $s |"
      done ;;
    activations)
      echo
      echo "| stack | schedule | micro-batches M (in flight: GPipe M, 1F1B <= P) | largest peak RSS over ranks (MB) |"
      echo "| --- | --- | --- | --- |"
      for rev in true false; do for sched in gpipe 1f1b; do for m in 2 4 8; do
        read -r b mem s lay w < <(one "a-$rev-$sched-$m" 2 $sched $m --set model.reversible=$rev --set train.steps=2 \
                                --set train.seq_len=512)
        echo "| $([ $rev = true ] && echo reversible || echo sequential) | $sched | $m | $mem |"
      done; done; done ;;
  esac
done
