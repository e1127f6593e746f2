#!/usr/bin/env bash
# Data-path benchmark: tokens/s that the sampler + batch assembly deliver from memory-mapped
# llm.c shards (build/sk_data_bench, one thread) against the tokens/s one training step consumes
# (`sinkhorn bench` on a workload, default shared/bench/small.toml), at that workload's batch and
# sequence length. Also the cost of opening shards (the id check reads every token once). Never
# part of ctest; run on a quiet machine (check `uptime`).
# Usage: tests/bench/run_data_bench.sh [--build DIR] [--workload FILE] [--dir SHARD_DIR] [--threads N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build workload=$root/../shared/bench/small.toml dir=${TMPDIR:-/tmp}/sk_data_bench threads=2
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --workload) workload=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "run_data_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f "$workload" ] || workload=$root/tests/bench/workloads/small.toml
echo "machine: $(nproc) cores, $(uptime)"
step=$(OMP_NUM_THREADS=$threads "$build/sinkhorn" bench "$workload" --quiet 2>/dev/null | tail -n 1)
read -r B T step_tps < <(echo "$step" | /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["batch_size"], j["seq_len"], j["tokens_per_s"])')
data=$("$build/sk_data_bench" "$dir" --batch "$B" --seq "$T" --batches 4000 | tail -n 1)
/usr/bin/python3 - "$step_tps" "$data" "$workload" <<'PY'
import json, sys
step, d, w = float(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print("workload %s: B=%d T=%d" % (w, d["batch"], d["seq_len"]))
print("| what | figure |")
print("| --- | --- |")
print("| training step consumes | %.0f tokens/s |" % step)
print("| sampler + assemble_batch deliver (1 thread) | %.3g tokens/s (%.0fx the step) |" % (d["delivered_tokens_per_s"], d["delivered_tokens_per_s"] / step))
print("| opening %d shards of %d tokens (%d-byte ids), id check included | %.2f s, %.2f GB/s |" % (d["shards"], d["tokens"] // d["shards"], d["token_bytes"], d["open_s"], d["open_gb_per_s"]))
PY
