#!/usr/bin/env bash
# Runs a test binary once per OpenBLAS kernel family that any x86-64 CPU can execute, so that a
# test depending on the rounding of one GEMM kernel (AVX2 vs AVX-512 machines differ) fails here,
# on every machine, instead of on some other machine. OpenBLAS (Debian: DYNAMIC_ARCH) honours
# OPENBLAS_CORETYPE; a build without dynamic dispatch ignores it and the runs are simply repeats.
# Usage: blas_kernels.sh TEST_BINARY [gtest args...]
set -u
bin=$1
shift
rc=0
for core in Haswell Sandybridge Nehalem Prescott; do
  echo "=== OPENBLAS_CORETYPE=$core"
  OPENBLAS_CORETYPE=$core "$bin" "$@" || { echo "FAILED with OPENBLAS_CORETYPE=$core"; rc=1; }
done
exit $rc
