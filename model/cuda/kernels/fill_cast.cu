// fill_cast.cu — fill (any element size), dtype casts, Philox uniform draws and dropout, and the
// in-place scale used by GEMM when K == 0.
//
// Randomness: element i of a stream is philox_uniform_at(key, i) (model/core/philox.h, shared with
// the CPU backend), so rand_uniform and the dropout mask are bit-identical on both backends. Each
// thread computes one Philox block (4 elements).
#include <cstdint>

#include <cuda_runtime.h>

#include "model/core/philox.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/device/common.cuh"
#include "model/cuda/launchers.h"

namespace sk::cu {

// ============================== kernels ==============================

template <class T>
__global__ void fill_kernel(T* dst, std::int64_t n, T value) {
  SK_GRID_LOOP(i, n) dst[i] = value;
}

__global__ void cast_kernel(void* y, const void* x, std::int64_t n, CastKind kind) {
  SK_GRID_LOOP(i, n) {
    switch (kind) {
      case CastKind::f32_to_bf16:
        static_cast<std::uint16_t*>(y)[i] = f32_to_bf16_bits(static_cast<const float*>(x)[i]);
        break;
      case CastKind::bf16_to_f32:
        static_cast<float*>(y)[i] = bf16_bits_to_f32(static_cast<const std::uint16_t*>(x)[i]);
        break;
      case CastKind::i32_to_f32:
        static_cast<float*>(y)[i] = static_cast<float>(static_cast<const std::int32_t*>(x)[i]);
        break;
      case CastKind::i64_to_f32:
        static_cast<float*>(y)[i] = static_cast<float>(static_cast<const std::int64_t*>(x)[i]);
        break;
      case CastKind::u8_to_f32:
        static_cast<float*>(y)[i] = static_cast<float>(static_cast<const std::uint8_t*>(x)[i]);
        break;
      case CastKind::f32_to_i64:
        static_cast<std::int64_t*>(y)[i] = static_cast<std::int64_t>(static_cast<const float*>(x)[i]);
        break;
    }
  }
}

// Thread t handles stream block first + t: draw elements 4 * (first + t) + j - offset that lie in [0, n).
__global__ void rand_uniform_kernel(float* y, std::int64_t n, RngKey key) {
  const auto first = static_cast<std::int64_t>(philox_first_block(key));
  const std::int64_t blocks = static_cast<std::int64_t>(philox_end_block(key, static_cast<std::uint64_t>(n))) - first;
  const auto off = static_cast<std::int64_t>(key.offset);
  SK_GRID_LOOP(t, blocks) {
    const std::int64_t b = first + t;
    const Philox4 r = philox_block(key, static_cast<std::uint64_t>(b));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::int64_t i = 4 * b + j - off;
      if (i >= 0 && i < n) y[i] = philox_uniform(r.v[j]);
    }
  }
}

__global__ void dropout_forward_kernel(float* y, const float* x, std::int64_t n, float p, float scale, RngKey key) {
  const auto first = static_cast<std::int64_t>(philox_first_block(key));
  const std::int64_t blocks = static_cast<std::int64_t>(philox_end_block(key, static_cast<std::uint64_t>(n))) - first;
  const auto off = static_cast<std::int64_t>(key.offset);
  SK_GRID_LOOP(t, blocks) {
    const std::int64_t b = first + t;
    const Philox4 r = philox_block(key, static_cast<std::uint64_t>(b));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::int64_t i = 4 * b + j - off;
      if (i >= 0 && i < n) y[i] = philox_uniform(r.v[j]) >= p ? x[i] * scale : 0.f;
    }
  }
}

__global__ void scale_inplace_kernel(void* c, bool bf16, std::int64_t n, float beta) {
  SK_GRID_LOOP(i, n) {
    if (bf16) {
      auto* p = static_cast<std::uint16_t*>(c);
      p[i] = beta == 0.f ? std::uint16_t{0} : f32_to_bf16_bits(beta * bf16_bits_to_f32(p[i]));
    } else {
      auto* p = static_cast<float*>(c);
      p[i] = beta == 0.f ? 0.f : beta * p[i];
    }
  }
}

// ============================== launchers ==============================

void launch_fill(void* dst, std::int64_t n, int elem_size, std::uint64_t pattern, cudaStream_t s) {
  const unsigned g = grid_for(n);
  switch (elem_size) {
    case 1: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint8_t*>(dst), n, static_cast<std::uint8_t>(pattern)); break;
    case 2: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint16_t*>(dst), n, static_cast<std::uint16_t>(pattern)); break;
    case 4: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint32_t*>(dst), n, static_cast<std::uint32_t>(pattern)); break;
    case 8: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint64_t*>(dst), n, pattern); break;
    default: CUDA_CHECK(cudaErrorInvalidValue);
  }
  SK_CUDA_LAUNCH_CHECK();
}

void launch_cast(void* y, const void* x, std::int64_t n, CastKind kind, cudaStream_t s) {
  cast_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n, kind);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_rand_uniform(float* y, std::int64_t n, std::uint64_t seed, std::uint64_t stream_id, std::uint64_t offset,
                         cudaStream_t s) {
  RngKey key;
  key.seed = seed;
  key.stream = stream_id;
  key.offset = offset;
  rand_uniform_kernel<<<grid_for((n + 3) / 4 + 1), kThreads, 0, s>>>(y, n, key);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_dropout_forward(float* y, const float* x, std::int64_t n, float p, float scale, std::uint64_t seed,
                            std::uint64_t stream_id, std::uint64_t offset, cudaStream_t s) {
  RngKey key;
  key.seed = seed;
  key.stream = stream_id;
  key.offset = offset;
  dropout_forward_kernel<<<grid_for((n + 3) / 4 + 1), kThreads, 0, s>>>(y, x, n, p, scale, key);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_scale_inplace(void* c, bool bf16, std::int64_t n, float beta, cudaStream_t s) {
  scale_inplace_kernel<<<grid_for(n), kThreads, 0, s>>>(c, bf16, n, beta);
  SK_CUDA_LAUNCH_CHECK();
}

}  // namespace sk::cu
