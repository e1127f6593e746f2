#!/usr/bin/env bash
# The main job, as it stands today: set up, build, then run
#   1. `sinkhorn reference-check` on a reference case (our model vs the PyTorch reference numbers),
#   2. `sinkhorn train launch/configs/tinyshakespeare.toml` — a real training run of a small causal
#      reversible model on Shakespeare's text (loss falling, validation loss, a generated sample,
#      checkpoints in runs/tinyshakespeare/), on CPU (or on the GPU when one is present),
#   3. launch/scripts/plot_metrics.py: the curves of that run, as runs/tinyshakespeare/curves.png.
# Usage: bash launch/scripts/quickstart.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash launch/scripts/setup.sh
build=${SK_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)" --target sinkhorn
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Our model against the PyTorch reference numbers of one case, judged by the independent checker.
bash tests/tools/run_reference_case.sh tests/data/reference/v01_causal_basic eval "$out/v01.safetensors" \
  "$build/sinkhorn" reference-check | tail -n 1
# The GPU when this binary has a working CUDA backend here (CUDA build and a visible GPU), else CPU.
device=cpu
if "$build/sinkhorn" --version 2>/dev/null | grep -q "backends here:.*cuda"; then device=cuda; fi
# A fresh run each time: the previous quickstart's run folder is replaced (use --resume to continue one).
rm -rf runs/tinyshakespeare
"$build/sinkhorn" train launch/configs/tinyshakespeare.toml --device "$device"
# The run's curves (loss / val loss against step and tokens, lr, tokens/s) from its metrics.jsonl.
echo "curves: $(/usr/bin/python3 launch/scripts/plot_metrics.py runs/tinyshakespeare)"
