#!/usr/bin/env bash
# The main job, as it stands today: set up, build, then run
#   1. `sinkhorn reference-check` on a reference case (our model vs the PyTorch reference numbers),
#   2. `sinkhorn bench` — real training steps (forward, loss, backward, AdamW) of the "small"
#      workload on CPU (or on the GPU when one is present).
# Usage: bash launch/scripts/quickstart.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash launch/scripts/setup.sh
build=${SK_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)" --target sinkhorn
out=$(mktemp -d)
case=tests/data/reference/v01_causal_basic
"$build/sinkhorn" reference-check "$case" --dump "$out/v01.safetensors"
python3 tests/tools/compare.py "$case/expected.safetensors" "$out/v01.safetensors" --failures-only
device=cpu
if nvidia-smi -L >/dev/null 2>&1; then device=cuda; fi
"$build/sinkhorn" bench tests/bench/workloads/small.toml --steps 5 --warmup 1 --device "$device"
