#!/usr/bin/env bash
# Data-parallel `sinkhorn train` on this machine under mpirun.
#   bash launch/scripts/mpirun.sh NP CONFIG.toml [sinkhorn train options...]
# e.g. bash launch/scripts/mpirun.sh 2 launch/configs/tinyshakespeare.toml --set train.steps=500
#
# With GPUs (nvidia-smi lists at least one): --device cuda is added unless given, and each rank sees
# one GPU of its own (CUDA_VISIBLE_DEVICES = local rank mod GPU count), so gradients go over NCCL
# when NP <= GPUs. Without GPUs the ranks train on CPU and use the MPI communicator; OpenMP threads
# are split between them (OMP_NUM_THREADS = cores / NP unless set).
# Environment: SK_BUILD_DIR (default build), MPIRUN (default mpirun), MPIRUN_ARGS (extra mpirun flags,
# e.g. "--hostfile hosts" for several nodes).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash launch/scripts/mpirun.sh NP CONFIG.toml [sinkhorn train options...]" >&2
  exit 2
fi
np=$1; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SK_BUILD_DIR:-$root/build}/sinkhorn
[ -x "$bin" ] || { echo "mpirun.sh: $bin not found: build first (cmake --build build --target sinkhorn)" >&2; exit 1; }
mpirun=${MPIRUN:-mpirun}
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-run-as-root)
ngpu=0
if command -v nvidia-smi > /dev/null 2>&1; then ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true); fi
args=("$@")
if [ "$ngpu" -gt 0 ]; then
  case " ${args[*]} " in *" --device "*) ;; *) args+=(--device cuda) ;; esac
  # One GPU per rank: each rank's wrapper narrows CUDA_VISIBLE_DEVICES to its local rank's device.
  exec "$mpirun" "${extra[@]}" ${MPIRUN_ARGS:-} -np "$np" -x SK_NGPU="$ngpu" bash -c \
    'export CUDA_VISIBLE_DEVICES=$(( ${OMPI_COMM_WORLD_LOCAL_RANK:-0} % SK_NGPU )); exec "$0" "$@"' \
    "$bin" train "${args[@]}"
fi
cores=$(nproc)
threads=${OMP_NUM_THREADS:-$(( cores / np > 0 ? cores / np : 1 ))}
[ "$np" -gt "$cores" ] && extra+=(--oversubscribe)
exec "$mpirun" "${extra[@]}" ${MPIRUN_ARGS:-} -np "$np" --bind-to none -x OMP_NUM_THREADS="$threads" "$bin" train "${args[@]}"
