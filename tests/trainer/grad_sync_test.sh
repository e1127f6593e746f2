#!/usr/bin/env bash
# Data-parallel gradient reduction over real mpirun ranks (CPU): bucketed, overlapped reduction
# against the one-shot reduction, ZeRO-1 against plain data parallelism, resharding of ZeRO-1
# checkpoints (4 -> 2 -> 1 replicas, ZeRO <-> no ZeRO), bf16 messages, and the bytes each rank
# sends (2 (n-1)/n x the gradient bytes). Uses tests/trainer/pipeline_tiny.toml and
# tests/tools/compare_runs.py against exported checkpoints.
# Usage: grad_sync_test.sh SINKHORN SOURCE_DIR MPIEXEC
set -u
bin=$1 src=$2 mpiexec=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
cfg=$src/tests/trainer/pipeline_tiny.toml
source "$src/tests/trainer/train_runs.sh"
run() { train_run "$@"; }  # NAME NP GRAD_ACCUM [--set ...]
last() { $py -c "import json,sys; r=[json.loads(l) for l in open('$1/metrics.jsonl') if '\"loss\"' in l][-1]; print(r['$2'])"; }

small=(--set parallel.bucket_mb=0.05)  # ~13 buckets of this 160k-parameter model
run one-2 2 2 --set parallel.bucket_mb=0
run buck-2 2 2 "${small[@]}"
grep -q "gradient reduction: 13 bucket(s) .* overlapped with backward" buck-2.log || { cat buck-2.log; fail "no bucket line"; }
compare one-2 buck-2 --bitwise                   # 2 replicas: a + b in either order, the same bits
run zero-2 2 2 "${small[@]}" --set parallel.zero_stage=1
compare one-2 zero-2 --bitwise
run one-4 4 1 --set parallel.bucket_mb=0
run buck-4 4 1 "${small[@]}"
compare one-4 buck-4 --rtol 1e-6                 # 4 replicas: the ring adds a bucket's chunks from another rank on
run zero-4 4 1 "${small[@]}" --set parallel.zero_stage=1 --set checkpoint.interval=3 --set checkpoint.keep_last=0
compare one-4 zero-4 --rtol 1e-6
run zero-2x2 4 2 "${small[@]}" --set parallel.zero_stage=1 --set parallel.pipeline_stages=2
compare one-2 zero-2x2 --rtol 1e-6

# Optimizer state per rank (m and v, 8 bytes per element): all of the stage's parameters without
# ZeRO; with ZeRO-1 on 4 replicas, rank 0 (which logs) owns a quarter of every bucket: exactly a
# quarter of the padded gradient buffer (the padding lies in the last rank's chunk).
full=$(last one-4 optimizer_state_bytes) z4=$(last zero-4 optimizer_state_bytes) grad=$(last one-4 grad_bytes)
$py -c "f, z, g = $full, $z4, $grad
assert 2 * g - 8 * 4 < f <= 2 * g, ('plain state', f, 'for', g, 'gradient bytes')
assert z == 2 * g // 4, ('ZeRO-1 state', z, 'expected', 2 * g // 4)" || fail "optimizer state bytes $full (plain) vs $z4 (ZeRO-1, 4 replicas)"
# Bytes sent per rank per step: 2 (n-1)/n x the (padded) gradient bytes, with and without ZeRO.
for r in one-2:2 buck-2:2 zero-2:2 one-4:4 buck-4:4 zero-4:4; do
  IFS=: read -r name n <<< "$r"
  sent=$(last $name comm_bytes) grad=$(last $name grad_bytes)
  [ "$sent" = $(( 2 * (n - 1) * grad / n )) ] || fail "$name: sent $sent bytes per step, expected 2 (n-1)/n x $grad"
done

# Resharding ZeRO-1 checkpoints: step 3 of zero-4 resumes on 2 replicas with ZeRO-1, on 1 rank, and
# a plain 2-replica checkpoint resumes with ZeRO-1 on 4.
resume() {  # NAME FROM NP ACCUM [--set ...]
  local name=$1 from=$2 np=$3 accum=$4; shift 4
  mkdir -p "$name/ck" && cp -r "$from/ck/step-00000003" "$name/ck/" && echo step-00000003 > "$name/ck/latest"
  run "$name" "$np" "$accum" --resume "$@"
  grep -aq "resumed from .*step-00000003" "$name.log" || { cat "$name.log"; fail "$name: no resume"; }
}
resume z4-to-z2 zero-4 2 2 "${small[@]}" --set parallel.zero_stage=1
compare zero-4 z4-to-z2 --rtol 1e-6 --steps 4:6
resume z4-to-1 zero-4 1 4
compare zero-4 z4-to-1 --rtol 1e-6 --steps 4:6
run plain-2 2 2 "${small[@]}" --set checkpoint.interval=3 --set checkpoint.keep_last=0
resume p2-to-z4 plain-2 4 1 "${small[@]}" --set parallel.zero_stage=1
compare plain-2 p2-to-z4 --rtol 1e-6 --steps 4:6
ls zero-4/ck/step-00000006 | grep -q "optim-stage-0-of-1-shard-3-of-4.safetensors" || fail "no per-rank optimizer shards"

# bf16 messages: half the bytes, rounded sums (losses within 1e-3 of fp32 over 6 steps).
run bf16-2 2 2 --set parallel.bucket_mb=0 --set parallel.grad_reduce_dtype=bf16
[ "$(last bf16-2 comm_bytes)" = $(( $(last one-2 comm_bytes) / 2 )) ] || fail "bf16 messages do not halve the bytes"
compare one-2 bf16-2 --rtol 1e-2 > bf16.txt || { cat bf16.txt; fail "bf16 reduction too far from fp32"; }
$py - one-2 bf16-2 <<'PY' || fail "bf16 losses"
import json, sys
def L(d): return [json.loads(l)["loss"] for l in open(d + "/metrics.jsonl") if '"loss"' in l]
a, b = L(sys.argv[1]), L(sys.argv[2])
assert a != b, "bf16 sums should round"
assert all(abs(x - y) <= 1e-3 * abs(x) for x, y in zip(a, b)), (a, b)
PY
echo OK
