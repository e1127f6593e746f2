# train_runs.sh — sourced by the multi-rank trainer tests (pipeline_layouts_test.sh,
# grad_sync_test.sh) after they set bin, src, mpiexec and cfg and cd into their work folder:
#   fail MESSAGE                  prints "FAIL: MESSAGE" and exits 1
#   compare ARGS                  tests/tools/compare_runs.py ARGS, failing the test on a difference
#   train_run NAME NP ACCUM [--set ...]
#                                 `sinkhorn train $cfg` with train.grad_accum = ACCUM on NP ranks
#                                 (one process when NP = 1; mpirun, oversubscribed, otherwise), logs
#                                 in NAME/ and NAME.log, checkpoints in NAME/ck, then exported to
#                                 NAME/export.safetensors
py=/usr/bin/python3
[ -x $py ] || py=python3
fail() { echo "FAIL: $*"; exit 1; }
compare() { $py "$src/tests/tools/compare_runs.py" "$@" || fail "compare_runs.py $*"; }
train_run() {
  local name=$1 np=$2 accum=$3; shift 3
  local cmd=("$bin" train "$cfg" --set train.grad_accum="$accum" --set log.dir="$PWD/$name"
             --set checkpoint.dir="$PWD/$name/ck" "$@")
  if [ "$np" = 1 ]; then
    OMP_NUM_THREADS=1 "${cmd[@]}" > "$name.log" 2>&1 || { cat "$name.log"; fail "$name: training failed"; }
  else
    "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" -x OMP_NUM_THREADS=1 "${cmd[@]}" > "$name.log" 2>&1 \
      || { cat "$name.log"; fail "$name: training failed"; }
  fi
  "$bin" checkpoint export "$PWD/$name/ck" --out "$PWD/$name/export.safetensors" > /dev/null 2>> "$name.log" \
    || { cat "$name.log"; fail "$name: export failed"; }
}
