// reduce.cuh — warp and block reductions, and the "row group" used by every kernel that works on
// rows of a [rows, cols] view (softmax, layernorm, cross-entropy, row reductions, argmax).
//
// A row group is either one warp (rows of <= kWarpRowMaxCols columns; kWarpRowsPerBlock rows per
// block) or one whole block (longer rows). Kernels are templated on that choice (WARP) and loop over
// rows grid-stride, so any number of rows works with a capped grid. Reductions are butterfly
// (xor-shuffle) reductions: every lane ends with the same, deterministic value.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "model/cuda/device/common.cuh"

namespace sk::cu {

constexpr int kRowBlockThreads = 512;  // block-per-row kernels; all row kernels use __launch_bounds__(512)

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {  // fmaxf semantics (NaN ignored), as the CPU's std::fmax
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct NanMaxOp {  // NaN propagates
  __device__ __forceinline__ float operator()(float a, float b) const { return nan_max(a, b); }
};
struct MinI64Op {
  __device__ __forceinline__ std::int64_t operator()(std::int64_t a, std::int64_t b) const { return a < b ? a : b; }
};

template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block must call it; all get the result. smem: >= 32 elements.
template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity, T* smem) {
  v = warp_reduce(v, op);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // smem may still be read by a previous call
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  v = lane < nwarps ? smem[lane] : identity;
  return warp_reduce(v, op);
}

// (value, index) "best first" reduction with pair_before (argmax / topk selection).
__device__ __forceinline__ void warp_best(float& v, std::int64_t& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const std::int64_t oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (pair_before(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}
__device__ __forceinline__ void block_best(float& v, std::int64_t& i, float* sv, std::int64_t* si) {
  warp_best(v, i);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sv[warp] = v;
    si[warp] = i;
  }
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  if (lane < nwarps) {
    v = sv[lane];
    i = si[lane];
  } else {
    v = __int_as_float(0xff800000);  // -inf, index max: loses to any real entry
    i = INT64_MAX;
  }
  warp_best(v, i);
}

template <bool WARP>
struct RowGroup {
  __device__ __forceinline__ static int lane() { return WARP ? static_cast<int>(threadIdx.x & 31) : static_cast<int>(threadIdx.x); }
  __device__ __forceinline__ static int width() { return WARP ? 32 : static_cast<int>(blockDim.x); }
  __device__ __forceinline__ static std::int64_t first_row() {
    return WARP ? static_cast<std::int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5)
                : static_cast<std::int64_t>(blockIdx.x);
  }
  __device__ __forceinline__ static std::int64_t row_stride() {
    return WARP ? static_cast<std::int64_t>(gridDim.x) * (blockDim.x >> 5) : static_cast<std::int64_t>(gridDim.x);
  }
  template <class T, class Op>
  __device__ __forceinline__ static T reduce(T v, Op op, T identity, T* smem) {
    if constexpr (WARP) {
      (void)identity;
      (void)smem;
      return warp_reduce(v, op);
    } else {
      return block_reduce(v, op, identity, smem);
    }
  }
  __device__ __forceinline__ static void best(float& v, std::int64_t& i, float* sv, std::int64_t* si) {
    if constexpr (WARP) {
      (void)sv;
      (void)si;
      warp_best(v, i);
    } else {
      block_best(v, i, sv, si);
    }
  }
};

#define SK_ROW_LOOP(G, row, rows) for (std::int64_t row = G::first_row(); row < (rows); row += G::row_stride())

// Launch geometry of a row kernel.
struct RowLaunch {
  unsigned grid;
  int threads;
  bool warp;
};
inline RowLaunch row_launch(std::int64_t rows, std::int64_t cols) {
  if (cols <= kWarpRowMaxCols) {
    return {grid_for(rows, kWarpRowsPerBlock), 32 * kWarpRowsPerBlock, true};
  }
  std::int64_t g = rows < kMaxBlocks ? rows : kMaxBlocks;
  return {static_cast<unsigned>(g < 1 ? 1 : g), kRowBlockThreads, false};
}

}  // namespace sk::cu
