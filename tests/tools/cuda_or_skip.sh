#!/usr/bin/env bash
# Runs COMMAND... only when SINKHORN (a built `sinkhorn`) has a working CUDA backend here, i.e.
# `sinkhorn --version` lists cuda among "backends here"; otherwise exits 77, which ctest reports
# as skipped (SKIP_RETURN_CODE). Used for the model-level CUDA tests (reference cases, bench and
# train on the GPU), which run in the GPU session through tests/gpu/run.sh.
#   cuda_or_skip.sh SINKHORN COMMAND [ARGS...]
set -u
bin=$1
shift
if ! "$bin" --version 2>/dev/null | grep -q "backends here:.*cuda"; then
  echo "skipped: no CUDA backend/GPU on this machine"
  exit 77
fi
exec "$@"
