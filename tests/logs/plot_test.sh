#!/usr/bin/env bash
# launch/scripts/plot_metrics.py: a PNG from a synthetic metrics.jsonl (progress, evaluation and
# sample records) and from a real tiny `sinkhorn train` run; a bad line is an error naming the
# file and line. The PNG is checked by its signature, its IHDR size (1100 x 750) and a
# non-trivial file size.
# Usage: plot_test.sh SOURCE_DIR SINKHORN
set -u
src=$(realpath "$1") bin=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
fail() { echo "FAIL: $*"; exit 1; }
plot=$src/launch/scripts/plot_metrics.py
check_png() {  # file
  /usr/bin/python3 - "$1" <<'PY' || fail "not the expected PNG: $1"
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', b[:8]
assert b[12:16] == b'IHDR'
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (1100, 750), (w, h)
assert len(b) > 20000, len(b)
print('png ok: %dx%d, %d bytes' % (w, h, len(b)))
PY
}
# 1. Synthetic run.
mkdir run
/usr/bin/python3 - <<'PY'
import json, math
with open('run/metrics.jsonl', 'w') as f:
    for s in range(10, 410, 10):
        f.write(json.dumps({"step": s, "loss": 5.5 * math.exp(-s / 120) + 1.5, "lr": 2e-3 * min(1, s / 20),
                            "grad_norm": 1.0, "tokens_per_s": 3000 + s, "elapsed": s / 3, "eta": 100,
                            "memory_bytes": 1 << 27, "tokens_seen": s * 2048}) + "\n")
        if s % 100 == 0:
            f.write(json.dumps({"step": s, "val_loss": 5.5 * math.exp(-s / 120) + 1.6}) + "\n")
    f.write(json.dumps({"step": 400, "sample": "ROMEO:\nWhat light"}) + "\n")
PY
out=$(/usr/bin/python3 "$plot" run) || fail "plot failed"
[ "$out" = "$work/run/curves.png" ] || fail "printed '$out'"
check_png run/curves.png
"$plot" run --out other.png --title "synthetic" > /dev/null || fail "--out"
check_png other.png
# 2. A bad line: one error line naming file:line, exit non-zero, no picture.
printf '{"step": 1, "loss": 2.0}\nnot json\n' > bad.jsonl
"$plot" bad.jsonl --out bad.png > out.txt 2> err.txt && fail "bad line accepted"
grep -q "plot_metrics: error: bad.jsonl:2: not JSON" err.txt || { cat err.txt; fail "bad-line message"; }
[ ! -e bad.png ] || fail "wrote a picture for bad input"
"$plot" nowhere > /dev/null 2> err.txt && fail "missing run dir accepted"
grep -q "no such file" err.txt || fail "missing-file message"
# 3. A real run's metrics.jsonl.
cfg=$src/launch/configs/tinyshakespeare.toml
"$bin" train "$cfg" --set model.dim=32 --set model.depth=1 --set model.heads=2 --set model.bucket_size=8 \
  --set model.max_seq_len=32 --set model.n_local_attn_heads=1 --set train.seq_len=32 --set train.batch_size=4 \
  --set train.steps=6 --set train.lr_warmup_steps=1 --set log.interval=2 --set log.eval_interval=3 \
  --set log.sample_interval=0 --set log.dir=real --set checkpoint.dir=ck > train.txt 2>&1 || { cat train.txt; fail "train"; }
"$plot" real > /dev/null || fail "plot of a real run"
check_png real/curves.png
echo "plot_test: ok"
