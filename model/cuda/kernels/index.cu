// index.cu — data movement: embedding gather and its scatter-add backward, permute, narrow copies
// (narrow / narrow_assign / concat / split / pad), roll, gather_rows / scatter_add_rows.
//
// Copies work on raw element bits, templated on an unsigned type of the element's size. The
// launchers widen the copy unit (up to 16 bytes) when the contiguous run and every address allow
// it, so a row of f32 moves as float4-sized chunks. Index kernels never read or write out of range:
// a bad index is skipped (gathers produce zeros) and flagged in *err (launchers.h).
#include <cstdint>

#include <cuda_runtime.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/device/common.cuh"
#include "model/cuda/launchers.h"

namespace sk::cu {

namespace {

// Largest unit in {16, 8, 4, 2, 1} bytes that divides `run_bytes` and the addresses a and b.
int copy_unit(std::int64_t run_bytes, std::uintptr_t a, std::uintptr_t b) {
  for (int u = 16; u > 1; u >>= 1) {
    const auto uu = static_cast<std::uintptr_t>(u);
    if (run_bytes % u == 0 && a % uu == 0 && b % uu == 0) return u;
  }
  return 1;
}

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

// ============================== kernels ==============================

__global__ void embedding_forward_kernel(float* y, const float* table, const std::int64_t* ids, std::int64_t n,
                                         std::int64_t V, std::int64_t E, int* err) {
  SK_GRID_LOOP(e, n * E) {
    const std::int64_t i = e / E, c = e % E;
    const std::int64_t id = ids[i];
    if (id >= 0 && id < V) {
      y[e] = table[id * E + c];
    } else {
      y[e] = 0.f;
      if (c == 0) atomicOr(err, kErrEmbedding);
    }
  }
}

__global__ void embedding_backward_kernel(float* dtable, const float* dy, const std::int64_t* ids, std::int64_t n,
                                          std::int64_t V, std::int64_t E, int* err) {
  SK_GRID_LOOP(e, n * E) {
    const std::int64_t i = e / E, c = e % E;
    const std::int64_t id = ids[i];
    if (id >= 0 && id < V) atomicAdd(dtable + id * E + c, dy[e]);
    else if (c == 0) atomicOr(err, kErrEmbeddingBackward);
  }
}

template <class T>
__global__ void permute_kernel(T* y, const T* x, std::int64_t n, PermuteDesc d) {
  SK_GRID_LOOP(e, n) {
    std::int64_t rem = e, off = 0;
#pragma unroll
    for (int k = kMaxPermuteRank - 1; k >= 0; --k) {  // constant indices: d stays in registers
      if (k < d.rank) {
        const std::int64_t c = rem % d.out[k];
        rem /= d.out[k];
        off += c * d.in_strides[k];
      }
    }
    y[e] = x[off];
  }
}

// Element e of the slice [outer, n_small, inner] <-> element of the big tensor [outer, n_big, inner].
template <class T>
__global__ void narrow_copy_kernel(T* y, const T* x, std::int64_t outer, std::int64_t n_big, std::int64_t n_small,
                                   std::int64_t inner, std::int64_t start, bool extract) {
  const std::int64_t chunk = n_small * inner;
  SK_GRID_LOOP(e, outer * chunk) {
    const std::int64_t o = e / chunk, rem = e % chunk;
    const std::int64_t big = (o * n_big + start) * inner + rem;
    if (extract) y[e] = x[big];
    else y[big] = x[e];
  }
}

__global__ void narrow_accumulate_kernel(float* y, const float* x, std::int64_t outer, std::int64_t n_big,
                                         std::int64_t n_small, std::int64_t inner, std::int64_t start) {
  const std::int64_t chunk = n_small * inner;
  SK_GRID_LOOP(e, outer * chunk) {
    const std::int64_t o = e / chunk, rem = e % chunk;
    y[(o * n_big + start) * inner + rem] += x[e];
  }
}

template <class T>
__global__ void roll_kernel(T* y, const T* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                            std::int64_t shift) {
  SK_GRID_LOOP(e, outer * n * inner) {
    const std::int64_t i = e % inner;
    const std::int64_t oj = e / inner;
    const std::int64_t j = oj % n, o = oj / n;
    std::int64_t src = j - shift;
    if (src < 0) src += n;
    y[e] = x[(o * n + src) * inner + i];
  }
}

template <class T>
__global__ void gather_rows_kernel(T* y, const T* x, const std::int64_t* idx, std::int64_t N, std::int64_t R,
                                   std::int64_t C, std::int64_t K, int* err) {
  SK_GRID_LOOP(e, N * K * C) {
    const std::int64_t c = e % C, nk = e / C;
    const std::int64_t b = nk / K;
    const std::int64_t r = idx[nk];
    if (r >= 0 && r < R) {
      y[e] = x[(b * R + r) * C + c];
    } else {
      y[e] = T{};
      if (c == 0) atomicOr(err, kErrGatherRows);
    }
  }
}

__global__ void scatter_add_rows_kernel(float* dx, const float* dy, const std::int64_t* idx, std::int64_t N,
                                        std::int64_t R, std::int64_t C, std::int64_t K, int* err) {
  SK_GRID_LOOP(e, N * K * C) {
    const std::int64_t c = e % C, nk = e / C;
    const std::int64_t b = nk / K;
    const std::int64_t r = idx[nk];
    if (r >= 0 && r < R) atomicAdd(dx + (b * R + r) * C + c, dy[e]);
    else if (c == 0) atomicOr(err, kErrScatterAddRows);
  }
}

// ============================== launchers ==============================

// Calls f(T{}) with T the unsigned type of `bytes` (1, 2, 4, 8 or 16 bytes).
template <class F>
void with_unit(int bytes, F&& f) {
  switch (bytes) {
    case 1: f(std::uint8_t{}); break;
    case 2: f(std::uint16_t{}); break;
    case 4: f(std::uint32_t{}); break;
    case 8: f(std::uint64_t{}); break;
    case 16: f(uint4{}); break;
    default: CUDA_CHECK(cudaErrorInvalidValue);
  }
}

void launch_embedding_forward(float* y, const float* table, const std::int64_t* ids, std::int64_t n, std::int64_t V,
                              std::int64_t E, int* err, cudaStream_t s) {
  embedding_forward_kernel<<<grid_for(n * E), kThreads, 0, s>>>(y, table, ids, n, V, E, err);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_embedding_backward(float* dtable, const float* dy, const std::int64_t* ids, std::int64_t n,
                               std::int64_t V, std::int64_t E, int* err, cudaStream_t s) {
  embedding_backward_kernel<<<grid_for(n * E), kThreads, 0, s>>>(dtable, dy, ids, n, V, E, err);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_permute(void* y, const void* x, std::int64_t n, int elem_size, const PermuteDesc& d, cudaStream_t s) {
  const unsigned g = grid_for(n);
  switch (elem_size) {
    case 1: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint8_t*>(y), static_cast<const std::uint8_t*>(x), n, d); break;
    case 2: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint16_t*>(y), static_cast<const std::uint16_t*>(x), n, d); break;
    case 4: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint32_t*>(y), static_cast<const std::uint32_t*>(x), n, d); break;
    case 8: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<std::uint64_t*>(y), static_cast<const std::uint64_t*>(x), n, d); break;
    default: CUDA_CHECK(cudaErrorInvalidValue);
  }
  SK_CUDA_LAUNCH_CHECK();
}

void launch_narrow_copy(void* y, const void* x, std::int64_t outer, std::int64_t n_big, std::int64_t n_small,
                        std::int64_t inner, std::int64_t start, bool extract, bool accumulate, int elem_size,
                        cudaStream_t s) {
  const std::int64_t total = outer * n_small * inner;
  if (accumulate) {
    narrow_accumulate_kernel<<<grid_for(total), kThreads, 0, s>>>(static_cast<float*>(y), static_cast<const float*>(x),
                                                                  outer, n_big, n_small, inner, start);
    SK_CUDA_LAUNCH_CHECK();
    return;
  }
  // Widen the unit: every offset touched is a multiple of inner*elem_size bytes plus a position
  // inside such a run, so a unit dividing the run and both base addresses keeps every access aligned.
  const std::int64_t row_bytes = inner * elem_size;
  const int u = copy_unit(row_bytes, addr(y), addr(x));
  const std::int64_t inner_u = row_bytes / u;
  with_unit(u, [&](auto t) {
    using T = decltype(t);
    narrow_copy_kernel<T><<<grid_for(outer * n_small * inner_u), kThreads, 0, s>>>(
        static_cast<T*>(y), static_cast<const T*>(x), outer, n_big, n_small, inner_u, start, extract);
  });
  SK_CUDA_LAUNCH_CHECK();
}

void launch_roll(void* y, const void* x, std::int64_t outer, std::int64_t n, std::int64_t inner, std::int64_t shift,
                 int elem_size, cudaStream_t s) {
  const std::int64_t row_bytes = inner * elem_size;
  const int u = copy_unit(row_bytes, addr(y), addr(x));
  const std::int64_t inner_u = row_bytes / u;
  with_unit(u, [&](auto t) {
    using T = decltype(t);
    roll_kernel<T><<<grid_for(outer * n * inner_u), kThreads, 0, s>>>(static_cast<T*>(y), static_cast<const T*>(x),
                                                                      outer, n, inner_u, shift);
  });
  SK_CUDA_LAUNCH_CHECK();
}

void launch_gather_rows(void* y, const void* x, const std::int64_t* idx, std::int64_t N, std::int64_t R,
                        std::int64_t C, std::int64_t K, int elem_size, int* err, cudaStream_t s) {
  const std::int64_t row_bytes = C * elem_size;
  const int u = copy_unit(row_bytes, addr(y), addr(x));
  const std::int64_t C_u = row_bytes / u;
  with_unit(u, [&](auto t) {
    using T = decltype(t);
    gather_rows_kernel<T><<<grid_for(N * K * C_u), kThreads, 0, s>>>(static_cast<T*>(y), static_cast<const T*>(x), idx,
                                                                     N, R, C_u, K, err);
  });
  SK_CUDA_LAUNCH_CHECK();
}

void launch_scatter_add_rows(float* dx, const float* dy, const std::int64_t* idx, std::int64_t N, std::int64_t R,
                             std::int64_t C, std::int64_t K, int* err, cudaStream_t s) {
  scatter_add_rows_kernel<<<grid_for(N * K * C), kThreads, 0, s>>>(dx, dy, idx, N, R, C, K, err);
  SK_CUDA_LAUNCH_CHECK();
}

}  // namespace sk::cu
