#!/usr/bin/env bash
# Installs the Debian packages sinkhorn builds and tests with. Idempotent; safe to re-run.
# The CUDA toolkit is not a Debian package here: CMake finds it at /usr/local/cuda if present.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config   # toolchain
  libopenblas-dev                                # CPU GEMM (cblas_sgemm)
  libopenmpi-dev openmpi-bin                     # MPI world, CPU communicator, mpirun
  libtomlplusplus-dev                            # TOML configs (launch/config_toml.cpp only)
  nlohmann-json3-dev                             # safetensors headers, index.json, metrics JSONL
  libgtest-dev googletest                        # unit tests through ctest
  libboost-program-options-dev                   # CLI parsing
  python3-numpy                                  # tests/data checker (compare of dumps)
  libsentencepiece-dev                           # `sinkhorn tokenize`, [data] tokenizer (data/tokenizer.cpp only)
  libprotobuf-dev protobuf-compiler              # TensorBoard event files (trainer/tensorboard.cpp only)
  zlib1g-dev                                     # crc32 of the token-shard fingerprints (data/token_corpus.cpp)
  python3-matplotlib                             # launch/scripts/plot_metrics.py
  python3-venv                                   # test-only venv for the tensorboard PyPI reader
  clang-14 libclang-rt-14-dev libomp-14-dev      # tests/fuzz: libFuzzer + ASan/UBSan build (own build dir)
)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: dependencies present"
