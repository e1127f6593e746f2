#!/usr/bin/env bash
# `sinkhorn train` on real corpora end to end: the tinyshakespeare_bpe recipe (SentencePiece model +
# llm.c shards of the shipped text) trained for a few steps with the tokenizer, TensorBoard events,
# whole-split evaluation (eval_batches = 0) with bits per byte, decoded samples — on one process and
# on a 2-stage pipeline; the TensorBoard scalars read back by TensorBoard's reader equal
# metrics.jsonl; a resume on changed shards is refused naming the shard; validation does not
# depend on train.seed.
# Usage: corpus_train_test.sh SINKHORN SOURCE_DIR MPIEXEC BUILD_DIR
set -u
bin=$1 src=$2 mpiexec=$3 build=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
fail() { echo "FAIL: $*"; exit 1; }
head -c 300000 "$src/launch/configs/data/tinyshakespeare.txt" > text.txt
"$bin" tokenize train --input text.txt --vocab-size 512 --model-type bpe --out tok.model > tok.log 2>&1 \
  || { cat tok.log; fail "tokenize train"; }
"$bin" tokenize encode --model tok.model --out shards/shard- --shard-tokens 40000 text.txt > enc.log 2>&1 \
  || { cat enc.log; fail "tokenize encode"; }
[ -f shards/shard-000001.bin ] || fail "expected several shards"
cfg=$src/launch/configs/tinyshakespeare_bpe.toml
small=(--set data.path="$work/shards/shard-*.bin" --set data.tokenizer="$work/tok.model" --set model.num_tokens=512
       --set model.dim=32 --set model.heads=2 --set model.n_local_attn_heads=1 --set train.batch_size=4
       --set train.steps=4 --set train.lr_warmup_steps=1 --set log.interval=1 --set log.eval_interval=4
       --set log.sample_interval=4 --set log.sample_len=12 --set log.tensorboard=true)
OMP_NUM_THREADS=1 "$bin" train "$cfg" "${small[@]}" --set log.dir="$work/one" --set checkpoint.dir="$work/one/ck" \
  > one.log 2>&1 || { cat one.log; fail "training on shards"; }
grep -q "eval step 4 | val loss [0-9.]* | val bits/byte [0-9.]*" one.log || { cat one.log; fail "no bits per byte"; }
grep -aq "^ROMEO:" one.log || { cat one.log; fail "the sample is not decoded text starting with the prompt"; }
"$mpiexec" --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" train "$cfg" "${small[@]}" \
  --set parallel.pipeline_stages=2 --set model.depth=2 --set log.dir="$work/two" --set checkpoint.dir="$work/two/ck" \
  > two.log 2>&1 || { cat two.log; fail "2-stage training on shards"; }
py=/usr/bin/python3
$py - one two <<'PY' || fail "1 process and 2 stages differ"
import json, sys
def recs(d): return [json.loads(l) for l in open(d + "/metrics.jsonl")]
a, b = recs(sys.argv[1]), recs(sys.argv[2])
la = [r["loss"] for r in a if "loss" in r]; lb = [r["loss"] for r in b if "loss" in r]
assert la == lb, (la, lb)                       # pipeline-only: bitwise
va = [r for r in a if "val_loss" in r]; vb = [r for r in b if "val_loss" in r]
assert va[0]["val_loss"] == vb[0]["val_loss"] and va[0]["val_bpb"] == vb[0]["val_bpb"], (va, vb)
sa = [r["sample"] for r in a if "sample" in r]; sb = [r["sample"] for r in b if "sample" in r]
assert sa == sb and sa[0].startswith("ROMEO:"), (sa, sb)
PY
# TensorBoard's own reader (a test venv as tests/logs/tensorboard_test.sh makes it).
venv=$build/test-venv
if ! "$venv/bin/python" -c 'import tensorboard' >/dev/null 2>&1; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv" && \
    "$venv/bin/pip" install -q --disable-pip-version-check "tensorboard==2.21.0" || fail "no tensorboard package"
fi
"$venv/bin/python" - one <<'PY' || fail "TensorBoard read-back"
import glob, json, math, sys
from tensorboard.backend.event_processing import event_accumulator
d = sys.argv[1]
files = glob.glob(d + "/events.out.tfevents.*")
assert len(files) == 1, files
ea = event_accumulator.EventAccumulator(files[0], size_guidance={"scalars": 0, "tensors": 0})
ea.Reload()
recs = [json.loads(l) for l in open(d + "/metrics.jsonl")]
loss = {r["step"]: r["loss"] for r in recs if "loss" in r}
got = {e.step: e.value for e in ea.Scalars("train/loss")}
assert sorted(got) == sorted(loss), (got, loss)
for s in loss: assert math.isclose(got[s], loss[s], rel_tol=1e-6), (s, got[s], loss[s])
val = [r for r in recs if "val_loss" in r][0]
assert math.isclose(ea.Scalars("val/loss")[0].value, val["val_loss"], rel_tol=1e-6)
assert math.isclose(ea.Scalars("val/bits_per_byte")[0].value, val["val_bpb"], rel_tol=1e-6)
for tag in ("train/lr", "train/grad_norm", "train/tokens_per_s", "train/memory_bytes"): assert ea.Scalars(tag), tag
assert "samples" in ea.Tags()["tensors"], ea.Tags()
PY
# Resuming on changed data: one line naming the shard.
cp -r shards shards2
printf 'X' | dd of=shards2/shard-000001.bin bs=1 seek=2000 conv=notrunc 2>/dev/null
OMP_NUM_THREADS=1 "$bin" train "$cfg" "${small[@]}" --set data.path="$work/shards2/shard-*.bin" --set train.steps=6 \
  --set log.dir="$work/one" --set checkpoint.dir="$work/one/ck" --resume > changed.log 2>&1 && fail "resumed on changed data"
grep -q "shard-000001.bin" changed.log || { cat changed.log; fail "the error does not name the changed shard"; }
# Validation windows do not depend on train.seed: the same weights (init_from, a vanishing lr) give
# the same validation loss under three seeds.
for seed in 1 2 3; do
  OMP_NUM_THREADS=1 "$bin" train "$cfg" "${small[@]}" --set train.steps=1 --set log.eval_interval=1 \
    --set log.sample_interval=0 --set log.tensorboard=false --set train.lr=1e-30 --set train.min_lr=0 --set train.seed=$seed \
    --set checkpoint.init_from="$work/one/ck" --set log.dir="$work/seed$seed" --set checkpoint.dir="$work/seed$seed/ck" > seed$seed.log 2>&1 \
    || { cat seed$seed.log; fail "seed $seed"; }
done
v=$(for seed in 1 2 3; do grep -o "val loss [0-9.]*" seed$seed.log; done | sort -u | wc -l)
[ "$v" = 1 ] || { grep "val loss" seed*.log; fail "validation loss depends on train.seed"; }
echo OK
