// common.cuh — small device helpers shared by the kernels: grid-stride loops, launch geometry,
// bf16 bit conversions (identical to the host's sk::f32_to_bf16), the NaN-aware ordering the CPU
// backend uses for max/argmax/topk. Device-side only plus a few constexpr host helpers; includes
// nothing outside the CUDA toolkit.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

namespace sk::cu {

constexpr int kThreads = 256;             // default block size of elementwise kernels
constexpr std::int64_t kMaxBlocks = 1 << 16;  // grid cap: kernels loop (grid-stride) beyond it

__host__ __device__ constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Blocks for n elements with `threads` per block (at least 1, at most kMaxBlocks).
inline unsigned grid_for(std::int64_t n, int threads = kThreads) {
  std::int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > kMaxBlocks) b = kMaxBlocks;
  return static_cast<unsigned>(b);
}

// Threads per block for a kernel that gives one block to each row of `cols` elements: the next
// power of two >= cols, clamped to [32, 1024].
inline int row_block_threads(std::int64_t cols) {
  int t = 32;
  while (t < 1024 && t < cols) t <<= 1;
  return t;
}

// Rows of at most this many columns get one warp each (several rows per block); longer rows get a
// whole block.
constexpr std::int64_t kWarpRowMaxCols = 1024;
constexpr int kWarpRowsPerBlock = 8;

__device__ __forceinline__ std::int64_t global_thread() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_stride() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

#define SK_GRID_LOOP(i, n) \
  for (std::int64_t i = ::sk::cu::global_thread(); i < (n); i += ::sk::cu::grid_stride())

// ---- bf16 as raw bits -------------------------------------------------------------------------
__device__ __forceinline__ std::uint16_t f32_to_bf16_bits(float f) {
  std::uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                                              // nearest even
  return static_cast<std::uint16_t>(u >> 16);
}
__device__ __forceinline__ float bf16_bits_to_f32(std::uint16_t h) {
  return __uint_as_float(static_cast<std::uint32_t>(h) << 16);
}

// ---- ordering shared with the CPU backend ------------------------------------------------------
// a ranks above b: larger value first, NaN above everything (as PyTorch's max/topk).
__device__ __forceinline__ bool nan_greater(float a, float b) {
  if (isnan(a)) return !isnan(b);
  if (isnan(b)) return false;
  return a > b;
}
// max that propagates NaN.
__device__ __forceinline__ float nan_max(float a, float b) { return nan_greater(b, a) ? b : a; }

// (value, index) pair for argmax/topk: a comes first if its value ranks above b's, or the values
// tie (neither ranks above the other) and its index is lower.
__device__ __forceinline__ bool pair_before(float va, std::int64_t ia, float vb, std::int64_t ib) {
  if (nan_greater(va, vb)) return true;
  if (nan_greater(vb, va)) return false;
  return ia < ib;
}

// exact GELU (erf form), and its derivative
__device__ __forceinline__ float gelu_exact(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_exact_grad(float x) {
  const float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
  return cdf + x * pdf;
}

}  // namespace sk::cu
