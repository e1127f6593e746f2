#!/usr/bin/env bash
# CLI tests of the `sinkhorn` binary: exit codes, ONE-line errors naming file/key/value, help,
# version, and a bench smoke run whose last stdout line is the JSON report.
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
# exit 1 and exactly one stderr line "sinkhorn: error: ..." containing every argument.
expect_error() {
  expect_rc 1
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
  *) echo "unknown case $case"; exit 2 ;;
esac
echo "ok [$case]"
