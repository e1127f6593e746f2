#!/usr/bin/env bash
# Topology invariance and resharding of `sinkhorn train` over real mpirun ranks (CPU, oversubscribed):
# the same config (tests/trainer/pipeline_tiny.toml: dropout, attention dropout, layer dropout, a
# PKM layer, a reversible stack; then weight_tie = true) trained on layouts 1x1, 1 stage x 2 replicas,
# 2 stages x 1, 2 stages x 2 and 4 stages x 1 (and 2 x 1 with GPipe) with the same global batch and
# micro-batch size (grad_accum = 4 / replicas) must match the one-process run:
#   pipeline-only layouts  bitwise (losses and every parameter)
#   data-parallel layouts  within 1e-5 relative: the gradient all-reduce adds in another order
#   weight_tie             within 1e-5 relative: tied gradients are summed over the stages
# A checkpoint saved at 2 stages x 2 replicas resumes at 1x1, 4x1 and 1x2 and continues with the
# losses and final parameters of the uninterrupted run (within 1e-5). Checked by
# tests/tools/compare_runs.py against the exported checkpoints (`sinkhorn checkpoint export`).
# Usage: pipeline_layouts_test.sh SINKHORN SOURCE_DIR MPIEXEC
set -u
bin=$1 src=$2 mpiexec=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
cfg=$src/tests/trainer/pipeline_tiny.toml
source "$src/tests/trainer/train_runs.sh"
run() {  # NAME NP STAGES GRAD_ACCUM [more --set ...]
  local name=$1 np=$2 stages=$3 accum=$4; shift 4
  train_run "$name" "$np" "$accum" --set parallel.pipeline_stages="$stages" "$@"
}

for tie in false true; do
  t="tie_$tie"
  run "$t-1x1" 1 1 4 --set model.weight_tie=$tie
  grep -q "layout: 1 pipeline stage(s) x 1 data-parallel replica(s); layers per stage \[4\]" "$t-1x1.log" \
    || { cat "$t-1x1.log"; fail "no layout line"; }
  run "$t-2x1" 2 2 4 --set model.weight_tie=$tie
  grep -aq "layout: 2 pipeline stage(s) x 1 data-parallel replica(s); layers per stage \[2, 2\]" "$t-2x1.log" \
    || { cat "$t-2x1.log"; fail "no 2-stage layout line"; }
  grep -aq "bubble .* (theory 20.0%)" "$t-2x1.log" || { cat "$t-2x1.log"; fail "no bubble in the progress line"; }
  run "$t-4x1" 4 4 4 --set model.weight_tie=$tie
  run "$t-1x2" 2 1 2 --set model.weight_tie=$tie
  run "$t-2x2" 4 2 2 --set model.weight_tie=$tie
  if [ $tie = false ]; then
    run "$t-2x1-gpipe" 2 2 4 --set parallel.schedule=gpipe
    run "$t-3x1-uneven" 3 3 4 --set parallel.stage_layers=[1,2,1]
    for l in 2x1 4x1 2x1-gpipe 3x1-uneven; do compare "$t-1x1" "$t-$l" --bitwise; done
  else
    for l in 2x1 4x1; do compare "$t-1x1" "$t-$l" --rtol 1e-5; done
  fi
  for l in 1x2 2x2; do compare "$t-1x1" "$t-$l" --rtol 1e-5; done
done

# Resharding: save at 2 stages x 2 replicas (steps 3 and 6), resume step 3 on other layouts.
run "src-2x2" 4 2 2 --set checkpoint.interval=3 --set checkpoint.keep_last=0
for l in 1x1:1:1:4 4x1:4:4:4 1x2:2:1:2; do
  IFS=: read -r name np stages accum <<< "$l"
  d="resume-$name"
  mkdir -p "$d/ck"
  cp -r "src-2x2/ck/step-00000003" "$d/ck/" && echo step-00000003 > "$d/ck/latest"
  run "$d" "$np" "$stages" "$accum" --resume
  grep -aq "resumed from .*step-00000003 at step 3 .*saved by 2 stage(s) x 2 replica(s)" "$d.log" \
    || { cat "$d.log"; fail "$d: no resume line"; }
  compare "src-2x2" "$d" --rtol 1e-5 --steps 4:6
  compare "tie_false-1x1" "$d" --rtol 1e-5 --steps 4:6
done

# inspect / export / sample / init_from on multi-file checkpoints.
"$bin" checkpoint inspect "$work/tie_false-2x2/ck" > inspect.txt 2>&1 || { cat inspect.txt; fail "inspect failed"; }
grep -q "layout: 2 stage(s) x 2 replica(s), layers per stage \[2,2\]" inspect.txt || { cat inspect.txt; fail "inspect layout"; }
grep -q "model-stage-1-of-2.safetensors" inspect.txt || { cat inspect.txt; fail "inspect files"; }
grep -q "every crc32 verified" inspect.txt || { cat inspect.txt; fail "inspect did not verify"; }
cp -r "$work/tie_false-2x2/ck/step-00000006" damaged
f=damaged/model-stage-1-of-2.safetensors
printf '\x13' | dd of=$f bs=1 seek=$(( $(stat -c %s $f) - 7 )) conv=notrunc 2>/dev/null
"$bin" checkpoint inspect damaged > inspect2.txt 2>&1 && fail "inspect accepted a damaged checkpoint"
grep -q "model-stage-1-of-2.safetensors' tensor .*checksum mismatch" inspect2.txt || { cat inspect2.txt; fail "inspect error"; }
"$bin" checkpoint export damaged --out x.safetensors > export2.txt 2>&1 && fail "export accepted a damaged checkpoint"
[ ! -e x.safetensors ] || fail "export of a damaged checkpoint wrote a file"
"$bin" sample "$cfg" --weights "$work/tie_false-4x1/ck" --prompt "To be" --len 8 > s4.txt 2> s4.err || { cat s4.err; fail "sample from 4 stages"; }
"$bin" sample "$cfg" --weights "$work/tie_false-1x1/export.safetensors" --prompt "To be" --len 8 > s1.txt 2> s1.err || { cat s1.err; fail "sample"; }
cmp -s s1.txt s4.txt || fail "sampling from the 4-stage checkpoint differs from its 1x1 export"
OMP_NUM_THREADS=1 "$bin" train "$cfg" --set train.steps=1 --set checkpoint.init_from="$work/tie_false-4x1/ck" \
  --set checkpoint.dir="$work/init/ck" > init.log 2>&1 || { cat init.log; fail "init_from a 4-stage checkpoint"; }
grep -q "initialised parameters from .*tie_false-4x1/ck/step-00000006" init.log || { cat init.log; fail "init line"; }

# Bad layouts: one line naming the key, nothing written.
"$mpiexec" --allow-run-as-root --oversubscribe -np 3 -x OMP_NUM_THREADS=1 "$bin" train "$cfg" \
  --set parallel.pipeline_stages=2 --set checkpoint.dir="$work/bad/ck" > bad.log 2>&1 && fail "3 ranks, 2 stages accepted"
grep -aq "\[parallel\]: pipeline_stages = 2: must divide the number of ranks (3)" bad.log || { cat bad.log; fail "wrong error"; }
[ ! -e "$work/bad" ] || fail "a refused layout wrote $work/bad"
# Errors on a grid rank carry its (stage, replica) coordinates.
"$mpiexec" --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" train "$cfg" \
  --set parallel.pipeline_stages=2 --set data.path=nope.txt > bad2.log 2>&1 && fail "a missing data file was accepted"
grep -aq "sinkhorn: error: rank [01] (stage [01]/2, replica 0/1): .*nope.txt" bad2.log || { cat bad2.log; fail "no grid coordinates"; }
echo OK
