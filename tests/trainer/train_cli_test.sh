#!/usr/bin/env bash
# End-to-end `sinkhorn train` through the CLI: a tiny run of launch/configs/tinyshakespeare.toml
# (shrunk with --set), metrics.jsonl and checkpoint layout, --resume, one-line errors (exit 1 at run
# time, 2 for a bad config or data file) and nothing overwritten, and the same run on 2 MPI ranks.
# Usage: train_cli_test.sh SINKHORN SOURCE_DIR [MPIEXEC]
set -u
bin=$1 src=$2 mpiexec=${3:-mpirun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
fail() { echo "FAIL: $*"; exit 1; }
# A CUDA build on a machine without a GPU prints one notice line ("... no GPU found; running on
# CPU") at start-up; it is not part of an error message, so it is removed before counting lines.
strip_notice() { sed -i '/^sinkhorn: built with CUDA but no GPU found/d' "$1"; }
cfg=$src/launch/configs/tinyshakespeare.toml
tiny=(--set model.dim=32 --set model.depth=1 --set model.heads=2 --set model.bucket_size=8 --set model.max_seq_len=32
      --set model.n_local_attn_heads=1 --set train.seq_len=32 --set train.batch_size=4 --set train.steps=6
      --set train.lr_warmup_steps=1 --set log.interval=2 --set log.eval_interval=6 --set log.eval_batches=1
      --set log.sample_interval=6 --set log.sample_len=4 --set checkpoint.interval=3)

# 1. A fresh run: progress lines, metrics.jsonl, checkpoints.
"$bin" train "$cfg" "${tiny[@]}" > out1.txt 2>&1 || { cat out1.txt; fail "train exited $?"; }
grep -q "^step 6/6 | loss" out1.txt || { cat out1.txt; fail "no progress line"; }
grep -q "eval step 6 | val loss" out1.txt || fail "no eval line"
grep -q "^ROMEO:" out1.txt || fail "no sample"
[ "$(grep -c '"loss"' runs/tinyshakespeare/metrics.jsonl)" = 3 ] || fail "metrics.jsonl: expected 3 step records"
ck=runs/tinyshakespeare/checkpoints
[ "$(cat $ck/latest)" = step-00000006 ] || fail "latest is '$(cat $ck/latest)'"
for f in model-stage-0-of-1.safetensors optim-stage-0-of-1.safetensors trainer.json index.json; do
  [ -f $ck/step-00000006/$f ] || fail "missing $ck/step-00000006/$f"
done
[ -d $ck/step-00000003 ] || fail "missing step-00000003"

# 2. Running again without --resume is refused; nothing changes.
sum=$(md5sum $ck/step-00000006/model-stage-0-of-1.safetensors)
"$bin" train "$cfg" "${tiny[@]}" > out2.txt 2>&1 && fail "a second fresh run into the same checkpoint.dir succeeded"
strip_notice out2.txt
[ "$(wc -l < out2.txt)" = 1 ] || { cat out2.txt; fail "error is not one line"; }
grep -q "already holds a run" out2.txt || { cat out2.txt; fail "wrong error"; }

# 3. --resume to 8 steps.
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=8 --resume > out3.txt 2>&1 || { cat out3.txt; fail "resume exited $?"; }
grep -q "resumed from .*step-00000006 at step 6" out3.txt || { cat out3.txt; fail "no resume line"; }
grep -q "^step 8/8" out3.txt || fail "resume did not reach step 8"
[ "$(cat $ck/latest)" = step-00000008 ] || fail "latest after resume"
[ "$(md5sum $ck/step-00000006/model-stage-0-of-1.safetensors)" = "$sum" ] || fail "step-00000006 changed"

# 4. A corrupt checkpoint: one line naming the file, exit 1, nothing written.
printf '\x13' | dd of=$ck/step-00000008/model-stage-0-of-1.safetensors bs=1 seek=2000 conv=notrunc 2>/dev/null
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=10 --resume > out4.txt 2>&1; rc=$?
[ $rc = 1 ] || fail "corrupt checkpoint: exit $rc"
strip_notice out4.txt
[ "$(wc -l < out4.txt)" = 1 ] || { cat out4.txt; fail "error is not one line"; }
grep -q "model-stage-0-of-1.safetensors.*checksum mismatch" out4.txt || { cat out4.txt; fail "wrong error"; }
[ "$(cat $ck/latest)" = step-00000008 ] || fail "latest changed"

# 5. Bad keys and values, missing data file: one line, exit 2 (README "Failure behaviour").
check_err() {  # expected-substring args...
  local want=$1; shift
  "$bin" train "$cfg" "$@" > err.txt 2>&1; local rc=$?
  [ $rc = 2 ] || { cat err.txt; fail "'$*': exit $rc"; }
  strip_notice err.txt
  [ "$(wc -l < err.txt)" = 1 ] || { cat err.txt; fail "'$*': not one line"; }
  grep -qF -- "$want" err.txt || { cat err.txt; fail "'$*': expected '$want'"; }
}
check_err "[train]: grad_acum = 2 (from --set train.grad_acum=2): unknown key (did you mean grad_accum?)" --set train.grad_acum=2
check_err "[log]: interval = 0: must be >= 1" --set log.interval=0
check_err "[train]: lr_decay = \"linear\": must be one of" --set train.lr_decay=linear
check_err "nope.txt" --set data.path=nope.txt --set checkpoint.dir=elsewhere
check_err "[model]: num_tokens = 100: must be >= 256" --set model.num_tokens=100 --set checkpoint.dir=elsewhere
[ ! -e elsewhere ] || fail "a failed run created its checkpoint.dir"

# 6. Two MPI ranks (the same global batch): runs, one progress output, checkpoint written once.
if command -v "$mpiexec" > /dev/null; then
  "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$bin" train "$cfg" "${tiny[@]}" \
      --set checkpoint.dir=dp/ck --set log.dir=dp > out6.txt 2>&1 || { cat out6.txt; fail "mpirun -np 2 exited $?"; }
  grep -q "grid: 2 ranks = 1 pipeline stage(s) x 2 data-parallel replica(s), mpi communicators" out6.txt \
    || { cat out6.txt; fail "no grid line"; }
  [ "$(grep -c '^step 6/6' out6.txt)" = 1 ] || { cat out6.txt; fail "expected one progress line per interval"; }
  [ "$(cat dp/ck/latest)" = step-00000006 ] || fail "DP checkpoint"
  grep -q '"world_size": 2' dp/ck/step-00000006/trainer.json || fail "trainer.json world_size"
  # The 2-rank losses match the 1-rank run (same global batch) to float rounding.
  python3 - runs/tinyshakespeare/metrics.jsonl dp/metrics.jsonl <<'PY' || fail "1-rank and 2-rank losses differ"
import json, sys
def losses(p):
    return {j["step"]: j["loss"] for j in map(json.loads, open(p)) if "loss" in j and j["step"] <= 6}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert a.keys() == b.keys(), (a, b)
for k in a:
    assert abs(a[k] - b[k]) < 2e-4, (k, a[k], b[k])
PY
  # An error on one rank ends the whole job with one line and exit 1.
  "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$bin" train "$cfg" "${tiny[@]}" --set train.batch_size=3 \
      --set checkpoint.dir=dp/ck2 > out7.txt 2>&1; rc=$?
  [ $rc != 0 ] || fail "mpirun with a bad batch size succeeded"
  grep -q "batch_size = 3: must be divisible by data-parallel replicas (2)" out7.txt || { cat out7.txt; fail "wrong DP error"; }
fi
echo "train CLI: ok"
