#!/usr/bin/env bash
# Enforces the folder contract of docs/architecture.md on #include lines. Fails listing offenders.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
fail=0
bad() { echo "include rule broken: $1"; fail=1; }
inc() { grep -RnE "^\s*#\s*include" "$@" 2>/dev/null; }
# model/ uses nothing else of ours, and no MPI, NCCL, TOML or file-format libraries.
inc model | grep -E '"(data|parallel|trainer|launch)/|<mpi\.h>|<nccl\.h>|toml\+\+|nlohmann' | while read -r l; do bad "model/: $l"; done | grep . && fail=1
# data/ uses nothing else of ours.
inc data | grep -E '"(model|parallel|trainer|launch)/' | while read -r l; do bad "data/: $l"; done | grep . && fail=1
# parallel/ may use model/core only.
inc parallel | grep -E '"(model/(layers|lm|cpu|cuda)|data|trainer|launch)/' | while read -r l; do bad "parallel/: $l"; done | grep . && fail=1
# trainer/ never reaches launch/.
inc trainer | grep -E '"launch/|toml\+\+' | while read -r l; do bad "trainer/: $l"; done | grep . && fail=1
# toml++ only in launch/config_toml.cpp.
grep -RlE "toml\+\+" --include='*.cpp' --include='*.h' --include='*.cu' --include='*.cuh' model data parallel trainer launch tests 2>/dev/null \
  | grep -v '^launch/config_toml\.cpp$' | while read -r f; do bad "toml++ outside launch/config_toml.cpp: $f"; done | grep . && fail=1
# .cu/.cuh include only CUDA headers, launchers.h, cuda_check.h, device/*.cuh and core/philox.h.
find model -name '*.cu' -o -name '*.cuh' | while read -r f; do
  inc "$f" | grep -vE '<(cuda_runtime|cuda_runtime_api|cuda_bf16|cuda_fp16|cooperative_groups|cub/[a-z_/]+|cooperative_groups/[a-z_]+|cstdint|cstddef|cfloat|climits|cmath|math_constants|mma)(\.h|\.cuh)?>|"(model/cuda/launchers\.h|model/cuda/cuda_check\.h|model/cuda/device/[a-z_]+\.cuh|model/core/philox\.h|device/[a-z_]+\.cuh|\.\./device/[a-z_]+\.cuh|launchers\.h|\.\./launchers\.h|\.\./cuda_check\.h|cuda_check\.h)"' \
    | while read -r l; do bad "$f: $l"; done
done | grep . && fail=1
# SentencePiece headers only in data/tokenizer.cpp; protobuf headers (and the generated event.pb.h)
# only in trainer/tensorboard.cpp: both libraries stay behind plain-C++ headers.
grep -RlE '#\s*include\s*[<"](sentencepiece_[a-z]+\.h)' --include='*.cpp' --include='*.h' --include='*.cu' --include='*.cuh' model data parallel trainer launch tests 2>/dev/null \
  | grep -v '^data/tokenizer\.cpp$' | while read -r f; do bad "sentencepiece outside data/tokenizer.cpp: $f"; done | grep . && fail=1
grep -RlE '#\s*include\s*[<"](google/protobuf/|[a-z_/]*\.pb\.h)' --include='*.cpp' --include='*.h' --include='*.cu' --include='*.cuh' model data parallel trainer launch tests 2>/dev/null \
  | grep -v '^trainer/tensorboard\.cpp$' | while read -r f; do bad "protobuf outside trainer/tensorboard.cpp: $f"; done | grep . && fail=1
if [ "$fail" = 0 ]; then echo "include rules: ok"; fi
exit $fail
