#!/usr/bin/env bash
# Failure behaviour of `sinkhorn train` end to end (README "Failure behaviour"), on 1 and 2 real
# mpirun ranks:
#   1. non-finite steps skipped, max_skipped_steps in a row -> exit 3, `latest` the last good
#      (finite) checkpoint; a finite exploding loss warns; the same on 2 ranks;
#   2. SIGTERM / SIGINT / SIGUSR1 -> checkpoint + exit 4 on every rank (one rank signalled, or
#      mpirun forwarding it); the resumed run is bit-identical to an uninterrupted one; a second
#      signal exits at once (128 + signal) and publishes nothing;
#   3. kill -9 of one rank ends a 2-rank job within seconds and --resume is bit-identical; kill -9
#      during checkpoint writes never leaves `latest` on an incomplete step; a stopped (SIGSTOP)
#      rank ends the job after parallel.timeout_s (watchdog), data-parallel and pipelined;
#   4. --resume=auto; a fresh run refuses step folders without `latest`; --resume takes the newest
#      complete step; the Slurm script resumes with --resume=auto and requeues after exit 4;
#   5. one run per checkpoint dir (lock naming host and pid);
#   6. up-front checks: unusable checkpoint.dir, ranks with different configs, absurd sizes (exit 2,
#      nothing written), a full disk (a clean error, the previous checkpoint kept);
#   7. metrics.jsonl after a resume: no duplicate steps, a torn last line cut.
# Usage: reliability_test.sh SINKHORN SOURCE_DIR [MPIEXEC]
set -u
bin=$(realpath "$1") src=$(realpath "$2") mpiexec=${3:-mpirun}
work=$(mktemp -d)
bg=()
trap 'for p in "${bg[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
cd "$work" || exit 2
fail() { echo "FAIL: $*"; exit 1; }
strip_notice() { sed -i '/^sinkhorn: built with CUDA but no GPU found/d' "$1"; }
mpi=("$mpiexec" --allow-run-as-root --oversubscribe)
command -v "$mpiexec" > /dev/null || fail "no $mpiexec"
export OMP_NUM_THREADS=1
py=python3
cfg=$src/launch/configs/tinyshakespeare.toml
tiny=(--set model.dim=32 --set model.depth=1 --set model.heads=2 --set model.bucket_size=8 --set model.max_seq_len=32
      --set model.n_local_attn_heads=1 --set train.seq_len=32 --set train.batch_size=4 --set log.eval_interval=0
      --set log.sample_interval=0)
# A model whose steps take a few ms (signals land mid-run).
small=(--set model.dim=64 --set model.depth=2 --set model.heads=2 --set model.bucket_size=16 --set model.max_seq_len=64
       --set model.n_local_attn_heads=1 --set train.seq_len=64 --set train.batch_size=8 --set log.eval_interval=0
       --set log.sample_interval=0 --set train.lr_warmup_steps=10)
# Waits until FILE has a line matching PATTERN (or the process PID ended).
wait_for() {  # file pattern pid
  for _ in $(seq 1 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Every f32 of a safetensors file is finite (an independent reader of the format).
all_finite() {
  "$py" - "$1" <<'PY'
import json, struct, sys, array, math
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
head = json.loads(raw[8:8 + n])
for k, v in head.items():
    if k == '__metadata__' or v['dtype'] != 'F32':
        continue
    b, e = v['data_offsets']
    a = array.array('f'); a.frombytes(raw[8 + n + b:8 + n + e])
    if not all(math.isfinite(x) for x in a):
        sys.exit(f'{k}: non-finite value')
PY
}
model_file=model-stage-0-of-1.safetensors

# ---- 1. Divergence ----
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=30 --set train.lr=3e7 --set train.lr_warmup_steps=0 \
  --set checkpoint.dir=div/ck --set checkpoint.interval=1 --set log.dir=div --set log.interval=1 > div.out 2> div.err
rc=$?
[ $rc = 3 ] || { cat div.out div.err; fail "diverged run: exit $rc (expected 3)"; }
grep -q "^sinkhorn: error: train: diverged: steps 2-11 (10 in a row, train.max_skipped_steps = 10)" div.err \
  || { cat div.err; fail "no divergence message"; }
[ "$(grep -c 'skipped (no update)' div.err)" = 10 ] || { cat div.err; fail "expected 10 skipped-step warnings"; }
[ "$(cat div/ck/latest)" = step-00000001 ] || fail "latest after divergence: $(cat div/ck/latest)"
[ "$(ls div/ck | grep -c '^step-')" = 1 ] || { ls div/ck; fail "a checkpoint was written while steps were skipped"; }
all_finite div/ck/step-00000001/$model_file || fail "latest holds non-finite values"
[ "$(grep -c '"skipped"' div/metrics.jsonl)" = 10 ] || fail "metrics.jsonl: expected 10 skipped records"
# The last good checkpoint resumes (and diverges again the same way).
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=30 --set train.lr=3e7 --set train.lr_warmup_steps=0 \
  --set checkpoint.dir=div/ck --set train.max_skipped_steps=3 --resume > div2.out 2> div2.err
rc=$?
[ $rc = 3 ] || { cat div2.err; fail "resumed diverged run: exit $rc"; }
grep -q "steps 2-4 (3 in a row" div2.err || { cat div2.err; fail "max_skipped_steps = 3"; }
# 2 ranks skip together and stop together.
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${tiny[@]}" --set train.steps=30 --set train.lr=3e7 --set train.lr_warmup_steps=0 \
  --set checkpoint.dir=div2r/ck --set checkpoint.interval=1 > div3.out 2> div3.err
rc=$?
[ $rc = 3 ] || { cat div3.out div3.err; fail "2-rank diverged run: exit $rc"; }
[ "$(grep -c 'error: .*diverged' div3.err)" = 1 ] || { cat div3.err; fail "2 ranks: expected one divergence line"; }
[ "$(cat div2r/ck/latest)" = step-00000001 ] || fail "2 ranks: latest"
# A finite loss that explodes warns (and the run ends normally).
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=12 --set train.lr=1e3 --set train.lr_warmup_steps=0 \
  --set log.interval=4 --set log.dir=expl --set checkpoint.dir=expl/ck > expl.out 2> expl.err
rc=$?
[ $rc = 0 ] || { cat expl.err; fail "exploding run: exit $rc"; }
grep -q "warning: step 2: loss .* is above 3 ln(num_tokens) = 16.6, worse than guessing uniformly" expl.err \
  || { cat expl.err; fail "no warning for an exploding loss"; }
grep -q '"warning"' expl/metrics.jsonl || fail "metrics.jsonl: no warning record"

# ---- 2. Signals ----
# Uninterrupted references (1 and 2 ranks).
"$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=ref1 --set log.interval=10 > ref1.out 2>&1 \
  || { cat ref1.out; fail "reference run"; }
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=ref2 --set log.interval=10 \
  > ref2.out 2>&1 || { cat ref2.out; fail "2-rank reference run"; }
# 2a. SIGTERM to one process: checkpoint, exit 4; resume to the end = the uninterrupted run.
"$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=sig1 --set log.interval=10 > sig1.out 2> sig1.err &
pid=$!; bg+=($pid)
wait_for sig1.out "^step  *20/150" $pid || { cat sig1.out sig1.err; fail "no progress before the signal"; }
kill -TERM $pid; wait $pid; rc=$?
[ $rc = 4 ] || { cat sig1.out sig1.err; fail "SIGTERM: exit $rc (expected 4)"; }
grep -q "^sinkhorn: stopped: SIGTERM at step [0-9]*/150: checkpoint sig1/step-[0-9]* written; continue with --resume" sig1.err \
  || { cat sig1.err; fail "SIGTERM: no stopped line"; }
n=$(sed -n 's/.*SIGTERM at step \([0-9]*\)\/150.*/\1/p' sig1.err)
[ "$n" -lt 150 ] || fail "SIGTERM landed after the run ended"
[ "$(cat sig1/latest)" = "$(printf 'step-%08d' "$n")" ] || fail "SIGTERM: latest is $(cat sig1/latest), stopped at $n"
"$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=sig1 --set log.interval=10 --resume > sig1r.out 2>&1 \
  || { cat sig1r.out; fail "resume after SIGTERM"; }
cmp -s ref1/step-00000150/$model_file sig1/step-00000150/$model_file || fail "stopped + resumed != uninterrupted (1 process)"
# 2b. SIGUSR1 to ONE rank of two: both stop after the same step, one checkpoint, exit 4.
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=sig2 --set log.interval=10 \
  > sig2.out 2> sig2.err &
mp=$!; bg+=($mp)
wait_for sig2.out "^step  *20/150" $mp || { cat sig2.out sig2.err; fail "2 ranks: no progress"; }
rank=$(pgrep -f "^$bin train .*checkpoint.dir=sig2" | tail -1)
[ -n "$rank" ] || fail "no rank process found"
kill -USR1 "$rank"; wait $mp; rc=$?
[ $rc = 4 ] || { cat sig2.out sig2.err; fail "2 ranks, SIGUSR1 to one: exit $rc"; }
[ "$(grep -c '^sinkhorn: stopped: SIGUSR1 at step' sig2.err)" = 1 ] || { cat sig2.err; fail "2 ranks: expected one stopped line"; }
grep -q "MPI_ABORT" sig2.err && { cat sig2.err; fail "a coordinated stop aborted the job"; }
n=$(sed -n 's/.*SIGUSR1 at step \([0-9]*\)\/150.*/\1/p' sig2.err)
[ "$(cat sig2/latest)" = "$(printf 'step-%08d' "$n")" ] || fail "2 ranks: latest"
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=sig2 --set log.interval=10 \
  --resume > sig2r.out 2>&1 || { cat sig2r.out; fail "2 ranks: resume after SIGUSR1"; }
cmp -s ref2/step-00000150/$model_file sig2/step-00000150/$model_file || fail "stopped + resumed != uninterrupted (2 ranks)"
# 2c. SIGUSR1 to mpirun: forwarded to the ranks.
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${tiny[@]}" --set train.steps=1000000 --set checkpoint.dir=sig3 --set log.interval=100 \
  > sig3.out 2> sig3.err &
mp=$!; bg+=($mp)
wait_for sig3.out "^step" $mp || { cat sig3.out sig3.err; fail "mpirun: no progress"; }
kill -USR1 $mp; wait $mp; rc=$?
[ $rc = 4 ] || { cat sig3.err; fail "SIGUSR1 to mpirun: exit $rc"; }
[ -f sig3/latest ] || fail "SIGUSR1 to mpirun: no checkpoint"
# 2d. A second signal exits at once: 128 + SIGINT, nothing published. (Steps of ~1 s.)
big=(--set model.dim=256 --set model.depth=4 --set model.max_seq_len=512 --set train.seq_len=512 --set train.batch_size=8
     --set log.interval=1 --set log.eval_interval=0 --set log.sample_interval=0)
"$bin" train "$cfg" "${big[@]}" --set train.steps=100 --set checkpoint.dir=sig4 > sig4.out 2> sig4.err &
pid=$!; bg+=($pid)
wait_for sig4.out "^step" $pid || { cat sig4.out sig4.err; fail "big run: no progress"; }
kill -INT $pid; sleep 0.3; kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] || { cat sig4.err; fail "second SIGINT: exit $rc (expected 130)"; }
grep -q "second stop signal: exiting now" sig4.err || { cat sig4.err; fail "no second-signal notice"; }
[ ! -e sig4/latest ] && [ -z "$(ls sig4 | grep '^step-')" ] || { ls sig4; fail "a checkpoint was published after the second signal"; }

# ---- 3. kill -9 ----
# 3a. One rank of two killed: the job ends within seconds; --resume continues bit-identically.
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=k9 --set checkpoint.interval=20 \
  --set log.interval=10 > k9.out 2> k9.err &
mp=$!; bg+=($mp)
wait_for k9.out "^checkpoint k9/step-00000040" $mp || { cat k9.out k9.err; fail "kill -9: no checkpoint before the kill"; }
rank=$(pgrep -f "^$bin train .*checkpoint.dir=k9" | head -1)
t0=$(date +%s.%N)
kill -9 "$rank"; wait $mp; rc=$?
dt=$(echo "$(date +%s.%N) - $t0" | bc)
[ $rc != 0 ] || fail "kill -9 of a rank: mpirun exited 0"
echo "$dt < 10" | bc | grep -q 1 || fail "kill -9 of a rank: the job took ${dt}s to end"
echo "kill -9 of one rank: the job ended after ${dt} s"
"${mpi[@]}" -np 2 "$bin" train "$cfg" "${small[@]}" --set train.steps=150 --set checkpoint.dir=k9 --set checkpoint.interval=20 \
  --set log.interval=10 --resume > k9r.out 2>&1 || { cat k9r.out; fail "resume after kill -9"; }
cmp -s ref2/step-00000150/$model_file k9/step-00000150/$model_file || fail "killed + resumed != uninterrupted (2 ranks)"
# 3c. No hang: one rank of two stopped (SIGSTOP) mid-run, data-parallel and as a 2-stage pipeline:
# the other rank's wait makes no progress, and after parallel.timeout_s the watchdog ends the job
# with one line naming the waiting rank and the operation.
for lay in dp pp; do
  extra=(); [ $lay = pp ] && extra=(--set parallel.pipeline_stages=2)
  "${mpi[@]}" -np 2 "$bin" train "$cfg" "${small[@]}" "${extra[@]}" --set train.steps=100000 --set parallel.timeout_s=3 \
    --set log.interval=5 --set log.dir=stop_$lay --set checkpoint.dir=stop_$lay/ck > stop_$lay.out 2> stop_$lay.err &
  mp=$!; bg+=($mp)
  wait_for stop_$lay.out "^step  *10/" $mp || { cat stop_$lay.out stop_$lay.err; fail "SIGSTOP ($lay): no progress before the stop"; }
  rank=$(pgrep -f "^$bin train .*log.dir=stop_$lay" | tail -1)
  t0=$(date +%s.%N)
  kill -STOP "$rank"; wait $mp; rc=$?
  dt=$(echo "$(date +%s.%N) - $t0" | bc)
  kill -9 "$rank" 2>/dev/null
  [ $rc != 0 ] || fail "SIGSTOP of a rank ($lay): mpirun exited 0"
  echo "$dt < 30" | bc | grep -q 1 || fail "SIGSTOP of a rank ($lay): the job took ${dt}s to end (timeout_s = 3)"
  grep -Eq "^sinkhorn: error: rank [01] \(stage [01]/[12], replica [01]/[12]\): .+ made no progress for [0-9]+ s \(parallel.timeout_s = 3\)" stop_$lay.err \
    || { cat stop_$lay.err; fail "SIGSTOP of a rank ($lay): no watchdog line naming the rank and the operation"; }
  echo "SIGSTOP of one rank ($lay): the job ended after ${dt} s: $(grep -m1 'made no progress' stop_$lay.err)"
done
# 3b. kill -9 at random points of a run that checkpoints every step: `latest` always names a
#     complete, verified step.
for delay in 1.3 1.9 2.6; do
  rm -rf kw
  "$bin" train "$cfg" --set model.dim=128 --set model.depth=2 --set model.max_seq_len=128 --set train.seq_len=128 \
    --set train.batch_size=2 --set log.eval_interval=0 --set log.sample_interval=0 --set checkpoint.interval=1 \
    --set checkpoint.keep_last=2 --set checkpoint.dir=kw --set train.steps=100000 > kw.out 2>&1 &
  pid=$!; bg+=($pid)
  sleep "$delay"; kill -9 $pid; wait $pid 2>/dev/null
  [ -f kw/latest ] || continue
  "$bin" checkpoint inspect kw > kw.inspect 2>&1 || { cat kw.inspect; fail "kill -9 during writes (after ${delay}s): latest is not a complete checkpoint"; }
done
"$bin" train "$cfg" --set model.dim=128 --set model.depth=2 --set model.max_seq_len=128 --set train.seq_len=128 \
  --set train.batch_size=2 --set log.eval_interval=0 --set log.sample_interval=0 --set checkpoint.dir=kw \
  --set train.steps=1 --resume=auto > kwr.out 2>&1 || { cat kwr.out; fail "resume=auto after kill -9 during writes"; }

# ---- 4. --resume=auto, step folders without latest, the Slurm script ----
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=6 --set checkpoint.interval=3 --set checkpoint.dir=auto \
  --set log.interval=3 --resume=auto > auto1.out 2>&1 || { cat auto1.out; fail "--resume=auto on an empty dir"; }
grep -q "resumed from" auto1.out && fail "--resume=auto resumed from nothing"
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=9 --set checkpoint.interval=3 --set checkpoint.dir=auto \
  --set log.interval=3 --resume=auto > auto2.out 2>&1 || { cat auto2.out; fail "--resume=auto on a run"; }
grep -q "^resumed from auto/step-00000006 at step 6" auto2.out || { cat auto2.out; fail "--resume=auto did not resume"; }
# A complete step folder without `latest` (a full disk at the `latest` update): refused by a fresh
# run, taken by --resume, whatever `latest` says.
rm auto/latest
sum=$(md5sum < auto/step-00000009/$model_file)
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=12 --set checkpoint.dir=auto > fresh.out 2>&1; rc=$?
[ $rc = 2 ] || { cat fresh.out; fail "fresh run into step folders without latest: exit $rc"; }
grep -q "already holds a run" fresh.out || { cat fresh.out; fail "fresh run: wrong error"; }
[ "$(md5sum < auto/step-00000009/$model_file)" = "$sum" ] || fail "the refused fresh run changed a checkpoint"
echo step-00000006 > auto/latest
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=12 --set checkpoint.interval=3 --set checkpoint.dir=auto --resume \
  > res.out 2>&1 || { cat res.out; fail "--resume with a stale latest"; }
grep -q "'latest' names step-00000006, but step-00000009 is the newest complete checkpoint" res.out || { cat res.out; fail "no note"; }
grep -q "^resumed from auto/step-00000009 at step 9" res.out || { cat res.out; fail "--resume did not take the newest step"; }
[ "$(cat auto/latest)" = step-00000012 ] || fail "latest after the resume"
# The Slurm script: srun with --resume=auto (checkpoint.dir set only by --set), requeue after exit 4.
mkdir -p fake
cat > fake/srun <<'SH'
#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_LOG"
while [ $# -gt 0 ] && [ "$1" != "${SK_BIN}" ]; do shift; done
"$@"
SH
cat > fake/scontrol <<'SH'
#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_LOG"
SH
chmod +x fake/srun fake/scontrol
mkdir -p build && ln -sf "$bin" build/sinkhorn
slurm_env=(env PATH="$work/fake:$PATH" FAKE_LOG="$work/fake.log" SK_BIN="$work/build/sinkhorn" SLURM_JOB_ID=77
           SLURM_NTASKS=1 SLURM_CPUS_PER_TASK=1 SK_DEVICE=cpu SK_BUILD_DIR="$work/build")
"${slurm_env[@]}" bash "$src/launch/scripts/slurm.sbatch" "$cfg" "${tiny[@]}" --set train.steps=6 --set log.interval=3 \
  --set checkpoint.dir=slurm/ck > slurm1.out 2>&1 || { cat slurm1.out; fail "slurm.sbatch (fresh)"; }
grep -q "^srun .* train $cfg --device cpu --resume=auto " fake.log || { cat fake.log; fail "srun without --resume=auto"; }
"${slurm_env[@]}" bash "$src/launch/scripts/slurm.sbatch" "$cfg" "${tiny[@]}" --set train.steps=9 --set log.interval=3 \
  --set checkpoint.dir=slurm/ck > slurm2.out 2>&1 || { cat slurm2.out; fail "slurm.sbatch (requeued)"; }
grep -q "^resumed from slurm/ck/step-00000006" slurm2.out || { cat slurm2.out; fail "slurm.sbatch did not resume"; }
grep -q scontrol fake.log && fail "requeued a job that ended normally"
"${slurm_env[@]}" bash "$src/launch/scripts/slurm.sbatch" "$cfg" "${small[@]}" --set train.steps=100000 --set log.interval=10 \
  --set checkpoint.dir=slurm/ck3 > slurm3.out 2>&1 &
sb=$!; bg+=($sb)
wait_for slurm3.out "^step" $sb || { cat slurm3.out; fail "slurm.sbatch: no progress"; }
kill -USR1 "$(pgrep -f "^$work/build/sinkhorn train .*checkpoint.dir=slurm/ck3")"; wait $sb; rc=$?
[ $rc = 4 ] || { cat slurm3.out; fail "slurm.sbatch after SIGUSR1: exit $rc"; }
grep -q "^scontrol requeue 77$" fake.log || { cat fake.log; fail "slurm.sbatch did not requeue"; }

# ---- 5. One run per checkpoint dir ----
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=1000000 --set log.interval=100 --set checkpoint.dir=lock > lock1.out 2>&1 &
pid=$!; bg+=($pid)
wait_for lock1.out "^step" $pid || { cat lock1.out; fail "lock: first run"; }
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=10 --set checkpoint.dir=lock --resume=auto > lock2.out 2>&1; rc=$?
strip_notice lock2.out
[ $rc = 1 ] || { cat lock2.out; fail "second run on a locked dir: exit $rc"; }
[ "$(wc -l < lock2.out)" = 1 ] || { cat lock2.out; fail "lock: not one line"; }
grep -q "checkpoint.dir 'lock' is in use by another run (host $(hostname) pid $pid" lock2.out || { cat lock2.out; fail "lock: holder not named"; }
kill -USR1 $pid; wait $pid

# ---- 6. Up-front checks ----
check_err() {  # expected-substring args...
  local want=$1; shift
  "$@" > err.txt 2>&1; local rc=$?
  strip_notice err.txt
  [ $rc = 2 ] || { cat err.txt; fail "'$*': exit $rc"; }
  grep -qF -- "$want" err.txt || { cat err.txt; fail "'$*': expected '$want'"; }
  grep -q "^step" err.txt && fail "'$*': training started"
  return 0
}
touch afile
check_err "checkpoint.dir 'afile': exists and is not a folder" "$bin" train "$cfg" "${tiny[@]}" --set checkpoint.dir=afile
check_err "is not a folder" "$bin" train "$cfg" "${tiny[@]}" --set checkpoint.dir=afile/ck
check_err "model.dim = 1000000000: the run needs at least" "$bin" train "$cfg" --set model.dim=1000000000 --set checkpoint.dir=huge
[ ! -e huge ] || fail "the refused huge run created its checkpoint.dir"
check_err "train.lr = 0.002 on rank 0 but 0.001 on rank 1" \
  "${mpi[@]}" -np 1 "$bin" train "$cfg" "${tiny[@]}" --set checkpoint.dir=mm : -np 1 "$bin" train "$cfg" "${tiny[@]}" \
  --set checkpoint.dir=mm --set train.lr=1e-3
check_err "train.steps = 10 on rank 0 but 11 on rank 1" \
  "${mpi[@]}" -np 1 "$bin" train "$cfg" "${tiny[@]}" --set train.steps=10 : -np 1 "$bin" train "$cfg" "${tiny[@]}" \
  --set train.steps=11
[ ! -e mm ] || fail "mismatched ranks created the checkpoint.dir"
# A full disk (here: a file size limit, EFBIG) at a save: one line, exit 1, the previous
# checkpoint stays latest and verifies.
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=3 --set checkpoint.dir=full > full1.out 2>&1 || fail "full: first run"
(trap '' XFSZ; ulimit -f 16; exec "$bin" train "$cfg" "${tiny[@]}" --set train.steps=6 --set checkpoint.dir=full --resume) \
  > full2.out 2> full2.err
rc=$?
strip_notice full2.err
[ $rc = 1 ] || { cat full2.err; fail "full disk: exit $rc"; }
[ "$(wc -l < full2.err)" = 1 ] || { cat full2.err; fail "full disk: not one line"; }
grep -q "File too large" full2.err || { cat full2.err; fail "full disk: wrong error"; }
[ "$(cat full/latest)" = step-00000003 ] || fail "full disk: latest changed"
"$bin" checkpoint inspect full > /dev/null 2>&1 || fail "full disk: the previous checkpoint does not verify"

# ---- 7. metrics.jsonl after a resume ----
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=6 --set checkpoint.interval=3 --set checkpoint.keep_last=0 \
  --set checkpoint.dir=met/ck --set log.dir=met --set log.interval=1 > met1.out 2>&1 || fail "metrics: first run"
rm -r met/ck/step-00000006 && echo step-00000003 > met/ck/latest
printf '{"step": 7, "loss": 1.0, "l' >> met/metrics.jsonl   # a torn last line
"$bin" train "$cfg" "${tiny[@]}" --set train.steps=6 --set checkpoint.interval=3 --set checkpoint.dir=met/ck \
  --set log.dir=met --set log.interval=1 --resume > met2.out 2>&1 || { cat met2.out; fail "metrics: resume"; }
grep -q "metrics.jsonl: dropped 3 record(s) after step 3 and a torn last line" met2.out || { cat met2.out; fail "no dropped-records line"; }
"$py" - met/metrics.jsonl <<'PY' || fail "metrics.jsonl after the resume"
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1]) if '"loss"' in l]
assert steps == [1, 2, 3, 4, 5, 6], steps
PY
echo "reliability_test: ok"
