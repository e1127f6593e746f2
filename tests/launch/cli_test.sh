#!/usr/bin/env bash
# CLI tests of the `sinkhorn` binary: exit codes (README "Failure behaviour": 2 for a bad config,
# command line or named file, 1 for a runtime failure), ONE-line errors naming file/key/value,
# nothing created by a refused run, help, version, and a bench smoke run whose last stdout line is
# the JSON report.
# Usage: cli_test.sh SINKHORN_BINARY SOURCE_DIR CASE      (one ctest per CASE; see CMakeTests.cmake)
set -u
bin=$1
src=$2
case=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small=$src/tests/bench/workloads/small.toml

die() { echo "FAIL [$case]: $*"; echo "--- stdout:"; cat "$tmp/out"; echo "--- stderr:"; cat "$tmp/err"; exit 1; }
# stderr without the CUDA build's one-time "no GPU found; running on CPU" notice (not an error).
run() {
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err.all"; echo $? >"$tmp/rc"
  grep -v '^sinkhorn: built with CUDA but no GPU found' "$tmp/err.all" >"$tmp/err" || true
}
expect_rc() { [ "$(cat "$tmp/rc")" = "$1" ] || die "exit code $(cat "$tmp/rc"), expected $1"; }
# exit $rc_want (default 2: unusable config / command line / named file) and exactly one stderr line
# "sinkhorn: error: ..." containing every argument.
rc_want=2
expect_error() {
  expect_rc $rc_want
  [ "$(wc -l <"$tmp/err")" = 1 ] || die "stderr is not exactly one line"
  grep -q '^sinkhorn: error: ' "$tmp/err" || die "stderr does not start with 'sinkhorn: error: '"
  for part in "$@"; do grep -qF -- "$part" "$tmp/err" || die "stderr lacks '$part'"; done
}
# A copy of small.toml with one line replaced (sed expression).
variant() { sed "$1" "$small" >"$tmp/run.toml"; }
# A tiny workload that runs in well under a second per step.
tiny() {
  sed -e 's/^dim = .*/dim = 32/' -e 's/^max_seq_len = .*/max_seq_len = 64/' -e 's/^depth = .*/depth = 1/' \
      -e 's/^heads = .*/heads = 2/' -e 's/^bucket_size = .*/bucket_size = 16/' -e 's/^n_local_attn_heads = .*/n_local_attn_heads = 1/' \
      -e 's/^batch_size = .*/batch_size = 2/' -e 's/^seq_len = .*/seq_len = 64/' "$small" >"$tmp/tiny.toml"
}

# Writes a safetensors file: FILE HEADER_JSON DATA_BYTES (the header exactly as given, padded with
# spaces to a multiple of 8; DATA_BYTES zero bytes after it, or the bytes of hex string $4).
mkst() {
  python3 - "$@" <<'PY'
import struct, sys
path, header, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
data = bytes.fromhex(sys.argv[4]) if len(sys.argv) > 4 else bytes(n)
while (8 + len(header)) % 8: header += b" "
open(path, "wb").write(struct.pack("<Q", len(header)) + header + data)
PY
}
# A tiny `sinkhorn train` run of the tinyshakespeare config (run from $tmp: its log.dir is relative).
tcfg=$src/launch/configs/tinyshakespeare.toml
tset=(--set model.dim=32 --set model.depth=1 --set model.heads=2 --set model.bucket_size=8 --set model.max_seq_len=32
      --set model.n_local_attn_heads=1 --set train.seq_len=32 --set train.batch_size=4 --set train.steps=2
      --set log.dir=logs --set checkpoint.dir=ck --set log.sample_interval=0 --set log.eval_interval=0)
# Nothing may have been created in $tmp by a refused run.
expect_nothing_created() { [ ! -e "$tmp/logs" ] && [ ! -e "$tmp/ck" ] && [ ! -e "$tmp/runs" ] || die "a refused run created files: $(ls -A "$tmp")"; }

case $case in
  help)
    run --help; expect_rc 0
    grep -q 'reference-check' "$tmp/out" && grep -q 'bench' "$tmp/out" || die "help lacks the commands"
    run bench --help; expect_rc 0
    grep -q -- '--steps' "$tmp/out" || die "bench help lacks --steps" ;;
  version)
    run --version; expect_rc 0
    grep -q '^sinkhorn ' "$tmp/out" || die "no version line" ;;
  no_command) run; expect_error "no command given" ;;
  unknown_command) run frobnicate; expect_error "unknown command 'frobnicate'" ;;
  unknown_option) run --frob; expect_error "unknown option --frob" ;;
  missing_config) run bench "$tmp/nope.toml"; expect_error "cannot read config file" "$tmp/nope.toml" ;;
  bad_key)
    variant 's/^bucket_size = 32/bucket_sise = 32/'
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml" "[model]" "bucket_sise = 32" "unknown key" "did you mean bucket_size?" ;;
  bad_type)
    variant 's/^causal = true/causal = "yes"/'
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml" "[model]" 'causal = "yes"' "expected true or false" ;;
  bad_value)
    variant 's/^batch_size = 4/batch_size = -4/'
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml" "[train]" "batch_size = -4" "must be >= 1" ;;
  bad_model_value)
    variant 's/^heads = 4/heads = 0/'
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml" "[model]" "heads = 0" ;;
  bad_syntax)
    variant 's/^lr = .*/lr = = 1/'
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml" "TOML syntax error" ;;
  bad_set)
    run bench "$small" --set train.lr=fast; expect_error "$small" "[train]" 'lr = "fast"' "--set train.lr=fast" "expected a number" ;;
  bad_set_form) run bench "$small" --set lr=1; expect_error "--set lr=1" "table.key" ;;
  bad_steps) run bench "$small" --steps 0; expect_error "--steps 0" "must be >= 1" ;;
  bad_steps_type) run bench "$small" --steps many; expect_error "bench:" "many" ;;
  bad_device) run bench "$small" --device tpu; expect_error "--device tpu" "expected cpu or cuda" ;;
  reference_check_args)
    run reference-check "$tmp"; expect_error "reference-check" "--dump"
    run reference-check "$tmp" --dump "$tmp/o.safetensors" --mode fit; expect_error "--mode fit" "expected eval or train"
    run reference-check "$tmp/no_case" --dump "$tmp/o.safetensors"; expect_error "$tmp/no_case" ;;
  bench_smoke)
    tiny
    run bench "$tmp/tiny.toml" --steps 2 --warmup 1 --set train.seed=3; expect_rc 0
    [ "$(wc -l <"$tmp/out")" = 1 ] || die "stdout should be exactly the JSON line"
    tail -n 1 "$tmp/out" | python3 -c '
import json, math, sys
r = json.loads(sys.stdin.read())
need = ["workload", "device", "steps", "tokens_per_s", "step_s_median", "step_s_all", "loss_first",
        "loss_last", "peak_rss_bytes", "peak_device_bytes", "params"]
missing = [k for k in need if k not in r]
assert not missing, missing
assert r["workload"] == "tiny" and r["device"] == "cpu" and r["steps"] == 2, r
assert len(r["step_s_all"]) == 2 and r["tokens_per_s"] > 0 and r["params"] > 0, r
assert abs(r["tokens_per_s"] - 2 * 64 / r["step_s_median"]) < 1e-6 * r["tokens_per_s"], r
assert math.isfinite(r["loss_first"]) and abs(r["loss_first"] - math.log(256)) < 1.5, r
assert r["peak_rss_bytes"] > 1e6, r
' || die "bad JSON report"
    grep -q 'warm-up' "$tmp/err" || die "no progress lines on stderr" ;;
  unknown_before_missing)
    # A misspelt required key is named with its hint, not reported as the missing key.
    sed 's/^dim = .*/dimm = 64/' "$small" >"$tmp/run.toml"
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml" "[model]" "dimm = 64" "unknown key (did you mean dim?)"
    grep -q "missing" "$tmp/err" && die "reported a missing key before the unknown one"
    sed '/^dim = /d' "$small" >"$tmp/run.toml"
    run bench "$tmp/run.toml"; expect_error "$tmp/run.toml [model]: dim: missing (required)" ;;
  parallel_table)
    tiny
    printf '\n[parallel]\npipeline_stages = 1\nschedule = "1f1b"\nstage_layers = []\nallow_shared_gpu = true\ntimeout_s = 60\n' >>"$tmp/tiny.toml"
    run bench "$tmp/tiny.toml" --steps 1 --warmup 0 --quiet; expect_rc 0
    run bench "$small" --set parallel.allow_shared_gpu=yes; expect_error "[parallel]" 'allow_shared_gpu = "yes"' "expected true or false"
    run bench "$small" --set parallel.timeout_s=0; expect_error "[parallel]" "timeout_s = 0" "must be > 0"
    run bench "$small" --set parallel.stage_layer=[1]; expect_error "[parallel]" "unknown key (did you mean stage_layers?)"
    run bench "$small" --set paralel.timeout_s=1; expect_error "[paralel]: unknown table (did you mean parallel?)" ;;
  train_refused)
    # Exit 2 and nothing created: missing data file, bad init_from, bad option, bad value, srun without PMI.
    cd "$tmp" || die "no tmp"
    run train "$tcfg" "${tset[@]}" --set data.path=nope.txt; expect_error "nope.txt"; expect_nothing_created
    run train "$tcfg" "${tset[@]}" --set checkpoint.init_from=nowhere; expect_error "init_from" "nowhere" "no such file or folder"
    expect_nothing_created
    run train "$tcfg" "${tset[@]}" --frob; expect_error "train:" "frob"; expect_nothing_created
    run train "$tcfg" "${tset[@]}" --set train.lr=-1; expect_error "[train]" "lr = -1" "must be > 0"; expect_nothing_created
    (export SLURM_PROCID=0 SLURM_NTASKS=4 SLURM_STEP_NUM_TASKS=4; run train "$tcfg" "${tset[@]}")
    expect_error "4 tasks" "world size 1" "--mpi=pmix"; expect_nothing_created
    # The same under a step of one task runs (here: trains 2 steps).
    (export SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_STEP_NUM_TASKS=1; run train "$tcfg" "${tset[@]}"); expect_rc 0 ;;
  runtime_error)
    # A failure while running is exit 1 (here: the dump cannot be written after the case ran).
    rc_want=1
    run reference-check "$src/tests/data/reference/v01_causal_basic" --dump "$tmp/no/such/dir/out.safetensors"
    expect_error "cannot create" "$tmp/no/such/dir" ;;
  reference_check_bad_batch)
    # Malformed batch / weights files: a one-line error naming the file and tensor, exit 2, never a crash.
    c=$tmp/case; cp -r "$src/tests/data/reference/v01_causal_basic" "$c"; b=$c/batch.safetensors
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[0,64],"data_offsets":[0,0]},"targets":{"dtype":"I64","shape":[0,64],"data_offsets":[0,0]}}' 0
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "tokens" "must be [batch >= 1"
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}' 0
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "'tokens'" "more elements than 64-bit"
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[2305843009213693952,8],"data_offsets":[0,0]}}' 0
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "'tokens'" "more elements than 64-bit"
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"targets":{"dtype":"I64","shape":[1,1],"data_offsets":[4,12]}}' 12
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "'tokens' and 'targets' overlap"
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"tokens":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]}}' 8
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "key 'tokens' appears twice"
    mkst "$b" '{"__metadata__":5,"tokens":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]}}' 8
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "__metadata__ must be an object"
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]}}' 16
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "belong to no tensor"
    # tokens [1, 16] all 999 (>= num_tokens 64)
    mkst "$b" '{"tokens":{"dtype":"I64","shape":[1,16],"data_offsets":[0,128]},"targets":{"dtype":"I64","shape":[1,16],"data_offsets":[128,256]}}' 256 \
      "$(python3 -c 'import struct; print((struct.pack("<q", 999) * 16 + struct.pack("<q", 1) * 16).hex())')"
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$b" "'tokens' element 0 = 999" "num_tokens = 64"
    cp "$src/tests/data/reference/v01_causal_basic/batch.safetensors" "$b"
    w=$c/weights.safetensors
    mkst "$w" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8
    run reference-check "$c" --dump "$tmp/o.safetensors"; expect_error "$w" "overlap"
    [ ! -e "$tmp/o.safetensors" ] || die "a refused case wrote its dump" ;;
  omp_policy)
    # Idle OpenMP threads sleep unless the user chose otherwise (launch/omp_policy.h).
    (unset OMP_WAIT_POLICY GOMP_SPINCOUNT; run --version); expect_rc 0
    grep -q "^OpenMP wait policy: GOMP_SPINCOUNT=1000 (set by sinkhorn" "$tmp/out" || die "no short spin by default"
    (export OMP_WAIT_POLICY=active; run --version); expect_rc 0
    grep -q "^OpenMP wait policy: active (OMP_WAIT_POLICY from the environment)" "$tmp/out" || die "user policy overridden"
    (unset OMP_WAIT_POLICY; export GOMP_SPINCOUNT=1000; run --version); expect_rc 0
    grep -q "GOMP_SPINCOUNT=1000 (from the environment)" "$tmp/out" || die "user spin count overridden" ;;
  mpirun_exit_code)
    # Under mpirun the error's code reaches the caller (MPI_Abort with it): 2 for a bad config.
    mpiexec=${SK_MPIEXEC:-mpirun}
    command -v "$mpiexec" >/dev/null || { echo "no $mpiexec: skipped"; exit 0; }
    cd "$tmp" || die "no tmp"
    "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$bin" train "$tcfg" "${tset[@]}" --set model.dimm=3 \
      >"$tmp/out" 2>"$tmp/err"; rc=$?
    [ $rc = 2 ] || die "mpirun exit $rc, expected 2"
    grep -q "dimm = 3 (from --set model.dimm=3): unknown key (did you mean dim?)" "$tmp/err" || die "wrong error"
    expect_nothing_created ;;
  *) echo "unknown case $case"; exit 2 ;;
esac
echo "ok [$case]"
