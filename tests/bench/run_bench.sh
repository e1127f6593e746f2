#!/usr/bin/env bash
# Benchmarks: our `sinkhorn bench` against the PyTorch reference (shared/bench/bench_reference.py)
# on the same machine, interleaved (ours, reference, ours, reference, ...), several runs each, then
# a table of the medians. Never part of ctest.
#
# Usage: tests/bench/run_bench.sh [options] [WORKLOAD.toml ...]
#   (default workloads: tests/bench/workloads/small.toml enwik8_lite.toml)
#   --runs N         runs per implementation and workload (default 3)
#   --steps N        timed steps per run (default: the workload's measure_steps)
#   --warmup N       warm-up steps per run (default: the workload's warmup_steps)
#   --threads N      CPU threads for both (OMP/OpenBLAS for ours, torch.set_num_threads) (default 2)
#   --device D       our device: cpu | cuda (default cpu); bench_reference.py always runs on CPU
#   --build DIR      build folder holding `sinkhorn` (default: build, then build-cli)
#   --memory         reversible-memory mode: reversible_depth2/12.toml, each also with
#                    model.reversible=false; the table compares peak memory
#   --scaling        linear-scaling mode: scaling_seq1024/4096.toml; the table adds the step-time
#                    ratio against the shortest sequence
#   --no-reference   run ours only
#   --out FILE       also keep every run's JSON (one line per run) in FILE
# The reference runs when PYTHONPATH names its four packages (shared/bench/README.md) and the
# script is found: $SK_BENCH_REFERENCE, else shared/bench/bench_reference.py beside or above the
# repository. It runs under $SK_BENCH_PYTHON (default /usr/bin/python3, Debian's torch).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
root=$BENCH_ROOT

runs=3 steps="" warmup="" threads=2 device=cpu build="" mode=plain use_ref=1 out=""
workloads=()
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --memory) mode=memory; shift ;;
    --scaling) mode=scaling; shift ;;
    --no-reference) use_ref=0; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) bench_usage "$0"; exit 0 ;;
    -*) echo "run_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) workloads+=("$1"); shift ;;
  esac
done

if [ -z "$build" ]; then
  for b in "$root/build" "$root/build-cli"; do [ -x "$b/sinkhorn" ] && build=$b && break; done
fi
bin=${build:+$build/sinkhorn}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "run_bench.sh: no sinkhorn binary (build it, or pass --build DIR)" >&2; exit 2; }

wl=$here/workloads
if ((${#workloads[@]} == 0)); then
  case $mode in
    plain) workloads=("$wl/small.toml" "$wl/enwik8_lite.toml") ;;
    memory) workloads=("$wl/reversible_depth2.toml" "$wl/reversible_depth12.toml") ;;
    scaling) workloads=("$wl/scaling_seq1024.toml" "$wl/scaling_seq4096.toml") ;;
  esac
fi

ref_script=${SK_BENCH_REFERENCE:-}
if [ -z "$ref_script" ]; then
  for c in "$root/shared/bench/bench_reference.py" "$root/../shared/bench/bench_reference.py"; do
    [ -f "$c" ] && ref_script=$c && break
  done
fi
python=${SK_BENCH_PYTHON:-/usr/bin/python3}
if ((use_ref)); then
  if [ -z "${PYTHONPATH:-}" ] || [ -z "$ref_script" ] || [ ! -f "$ref_script" ]; then
    echo "# reference skipped: set PYTHONPATH to the reference packages (and SK_BENCH_REFERENCE if needed)" >&2
    use_ref=0
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.jsonl

# Variants: "label|config path" (memory mode adds reversible=false copies).
variants=()
for w in "${workloads[@]}"; do
  [ -f "$w" ] || { echo "run_bench.sh: no workload $w" >&2; exit 2; }
  name=$(basename "$w" .toml)
  variants+=("$name|$w")
  if [ "$mode" = memory ]; then
    sed 's/^reversible = true/reversible = false/' "$w" >"$tmp/${name}_plain.toml"
    variants+=("$name (reversible=false)|$tmp/${name}_plain.toml")
  fi
done

run_ours() {  # label config
  local args=(bench "$2" --device "$device" --quiet)
  [ -n "$steps" ] && args+=(--steps "$steps")
  [ -n "$warmup" ] && args+=(--warmup "$warmup")
  local line
  if line=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$bin" "${args[@]}" | tail -n 1); then
    echo "{\"impl\": \"sinkhorn\", \"variant\": \"$1\", \"run\": $line}" >>"$results"
  else
    echo "# sinkhorn failed on $1" >&2
  fi
}

run_ref() {  # label config
  local args=("$ref_script" --json --threads "$threads")
  [ -n "$steps" ] && args+=(--steps "$steps")
  [ -n "$warmup" ] && args+=(--warmup "$warmup")
  local line
  line=$("$python" "${args[@]}" "$2" | grep '^{' | tail -n 1 || true)
  if [ -n "$line" ]; then
    echo "{\"impl\": \"reference\", \"variant\": \"$1\", \"run\": $line}" >>"$results"
  else
    echo "# reference failed on $1" >&2
  fi
}

echo "# $(date -Iseconds)  $(uname -n)  nproc=$(nproc)  threads=$threads  device=$device  runs=$runs  mode=$mode" >&2
for ((r = 1; r <= runs; ++r)); do
  for v in "${variants[@]}"; do
    label=${v%%|*} cfg=${v#*|}
    echo "# run $r/$runs: $label" >&2
    run_ours "$label" "$cfg"
    ((use_ref)) && run_ref "$label" "$cfg"
  done
done
[ -n "$out" ] && cp "$results" "$out"

python3 - "$results" "$mode" <<'EOF'
import json, statistics, sys
path, mode = sys.argv[1], sys.argv[2]
rows = {}
for line in open(path):
    r = json.loads(line)
    run = r["run"]
    if r["impl"] == "sinkhorn":
        tps, step = run["tokens_per_s"], run["step_s_median"]
        rss = run["peak_rss_bytes"] / 2**20
        dev = run.get("peak_device_bytes")
        params, loss = run["params"], run["loss_first"]
    else:
        tps, step = run["tokens_per_s"], run["median_step_s"]
        rss, dev, params, loss = run["peak_rss_mb"], None, run["params"], run["first_loss"]
    rows.setdefault((r["variant"], r["impl"]), []).append((tps, step, rss, dev, params, loss))

def med(xs):
    return statistics.median(xs)

order = []
for key in rows:
    if key[0] not in order:
        order.append(key[0])
base_step = {}
print("| workload | impl | runs | tokens/s (median of run medians; min-max) | step s | peak RSS MB | peak device MB | params | first loss |%s"
      % (" step-time ratio |" if mode == "scaling" else ""))
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |%s" % (" --- |" if mode == "scaling" else ""))
for v in order:
    for impl in ("sinkhorn", "reference"):
        rs = rows.get((v, impl))
        if not rs:
            continue
        tps = [x[0] for x in rs]
        step = med([x[1] for x in rs])
        devs = [x[3] for x in rs if x[3] is not None]
        dev = "%.0f" % (max(devs) / 2**20) if devs else "-"
        ratio = ""
        if mode == "scaling":
            base_step.setdefault(impl, step)
            ratio = " %.2f |" % (step / base_step[impl])
        print("| %s | %s | %d | %.0f (%.0f-%.0f) | %.3f | %.0f | %s | %s | %.3f |%s"
              % (v, impl, len(rs), med(tps), min(tps), max(tps), step, max(x[2] for x in rs), dev,
                 f"{rs[0][4]:,}", rs[0][5], ratio))
EOF
