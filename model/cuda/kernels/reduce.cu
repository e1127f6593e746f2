// reduce.cu — reductions over one axis of x seen as [outer, n, inner] (sum / mean / max with
// backward, logsumexp with backward, cumsum), and argmax / topk along the last axis.
//
// Layout strategy
// * inner == 1 (the reduced axis is the last one): a "row group" (one warp for rows of <= 1024
//   elements, else one block) reduces each row (device/reduce.cuh). Few long rows are split into
//   segments reduced in a first pass and combined in a second, so the GPU stays busy.
// * inner > 1: threads run along `inner` (coalesced) and walk the reduced axis; when there are
//   few columns, the reduced axis is split into segments whose partial results are combined in a
//   second pass.
// Every split is a function of the shapes only and partial results are combined in a fixed order,
// so results are deterministic run to run and across GPUs. NaN and tie rules are the CPU backend's
// (model/cpu/reduce.cpp, index.cpp): max propagates NaN, logsumexp ignores it in the maximum
// (std::fmax) and lets it through the sum, argmax/topk rank NaN highest and prefer lower indices.
#include <cstdint>

#include <cuda_runtime.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/device/common.cuh"
#include "model/cuda/device/reduce.cuh"
#include "model/cuda/launchers.h"

namespace sk::cu {

namespace {

constexpr float kNegInf = -__builtin_huge_valf();

// ---- split plans (host) ----------------------------------------------------------------------
constexpr std::int64_t kTargetBlocks = 512;  // fixed (not per-GPU) so results match across GPUs

// inner == 1: segments per row.
std::int64_t row_splits(std::int64_t outer, std::int64_t n) {
  if (outer >= kTargetBlocks / 2 || n <= 16384) return 1;
  std::int64_t s = ceil_div(kTargetBlocks, outer);
  std::int64_t by_len = ceil_div(n, 8192);
  if (s > by_len) s = by_len;
  if (s > 1024) s = 1024;
  if (s < 1) s = 1;
  const std::int64_t chunk = ceil_div(n, s);
  return ceil_div(n, chunk);  // no empty segment
}

// inner > 1: segments of the reduced axis.
constexpr int kColTx = 32, kColTy = 8;
std::int64_t col_splits(std::int64_t outer, std::int64_t n, std::int64_t inner) {
  const std::int64_t tiles = outer * ceil_div(inner, kColTx);
  if (tiles >= kTargetBlocks / 2 || n <= 64) return 1;
  std::int64_t s = ceil_div(kTargetBlocks, tiles);
  std::int64_t by_len = ceil_div(n, 64);
  if (s > by_len) s = by_len;
  if (s > 1024) s = 1024;
  if (s < 1) s = 1;
  const std::int64_t chunk = ceil_div(n, s);
  return ceil_div(n, chunk);
}

}  // namespace

// ============================== reduce: kernels ==============================

// Virtual row v = (row r, segment sp) covers x[r, sp*chunk : min(n, (sp+1)*chunk)].
// op: kSum / kMean (divide by `divisor`) / kMaxReduce.
template <bool WARP>
__global__ void __launch_bounds__(512)
reduce_rows_kernel(float* out, const float* x, std::int64_t vrows, std::int64_t n, std::int64_t nsplit,
                   std::int64_t chunk, int op, float divisor) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, v, vrows) {
    const std::int64_t r = v / nsplit, sp = v % nsplit;
    const std::int64_t j0 = sp * chunk;
    const std::int64_t j1 = j0 + chunk < n ? j0 + chunk : n;
    const float* xr = x + r * n;
    float res;
    if (op == kMaxReduce) {
      float acc = kNegInf;
      for (std::int64_t j = j0 + G::lane(); j < j1; j += G::width()) acc = nan_max(acc, xr[j]);
      res = G::reduce(acc, NanMaxOp{}, kNegInf, smem);
    } else {
      float acc = 0.f;
      for (std::int64_t j = j0 + G::lane(); j < j1; j += G::width()) acc += xr[j];
      res = G::reduce(acc, SumOp{}, 0.f, smem);
      if (op == kMean) res = res / divisor;
    }
    if (G::lane() == 0) out[v] = res;
  }
}

// Block (32, 8) per tile of 32 columns of one outer index and one segment of the reduced axis.
// nsplit == 1: writes y [outer, inner] (mean divided); else partials ws [outer, nsplit, inner].
__global__ void __launch_bounds__(256)
reduce_cols_kernel(float* out, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                   std::int64_t nsplit, std::int64_t chunk, int op) {
  __shared__ float part[kColTy][kColTx + 1];
  const std::int64_t ncb = (inner + kColTx - 1) / kColTx;
  const std::int64_t sp = blockIdx.y;
  const std::int64_t i0 = sp * chunk;
  const std::int64_t i1 = i0 + chunk < n ? i0 + chunk : n;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const bool is_max = op == kMaxReduce;
  for (std::int64_t t = blockIdx.x; t < outer * ncb; t += gridDim.x) {
    const std::int64_t o = t / ncb, j = (t % ncb) * kColTx + tx;
    float acc = is_max ? kNegInf : 0.f;
    if (j < inner) {
      const float* base = x + o * n * inner + j;
      for (std::int64_t i = i0 + ty; i < i1; i += kColTy) {
        const float v = base[i * inner];
        acc = is_max ? nan_max(acc, v) : acc + v;
      }
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && j < inner) {
      for (int k = 1; k < kColTy; ++k) acc = is_max ? nan_max(acc, part[k][tx]) : acc + part[k][tx];
      if (nsplit == 1) {
        out[o * inner + j] = op == kMean ? acc / static_cast<float>(n) : acc;
      } else {
        out[(o * nsplit + sp) * inner + j] = acc;
      }
    }
    __syncthreads();
  }
}

// y[o, j] = combine over segments of ws[o, :, j] (fixed order).
__global__ void reduce_cols_finish_kernel(float* y, const float* ws, std::int64_t outer, std::int64_t n,
                                          std::int64_t inner, std::int64_t nsplit, int op) {
  SK_GRID_LOOP(t, outer * inner) {
    const std::int64_t o = t / inner, j = t % inner;
    const float* p = ws + o * nsplit * inner + j;
    float acc = p[0];
    for (std::int64_t s = 1; s < nsplit; ++s) acc = op == kMaxReduce ? nan_max(acc, p[s * inner]) : acc + p[s * inner];
    y[t] = op == kMean ? acc / static_cast<float>(n) : acc;
  }
}

// ---- reduce backward ----
__global__ void reduce_backward_sum_kernel(float* dx, const float* dy, std::int64_t outer, std::int64_t n,
                                           std::int64_t inner, float mul) {
  SK_GRID_LOOP(e, outer * n * inner) {
    const std::int64_t o = e / (n * inner), j = e % inner;
    dx[e] = mul == 1.f ? dy[o * inner + j] : dy[o * inner + j] / mul;
  }
}

__device__ __forceinline__ bool same_or_both_nan(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

// inner == 1: the first index of each row holding y gets dy, the rest 0.
template <bool WARP>
__global__ void __launch_bounds__(512)
reduce_backward_max_rows_kernel(float* dx, const float* dy, const float* x, const float* y, std::int64_t rows,
                                std::int64_t n) {
  using G = RowGroup<WARP>;
  __shared__ std::int64_t smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * n;
    const float target = y[r];
    std::int64_t first = INT64_MAX;
    for (std::int64_t j = G::lane(); j < n; j += G::width())
      if (same_or_both_nan(xr[j], target)) {
        first = j;
        break;
      }
    first = G::reduce(first, MinI64Op{}, static_cast<std::int64_t>(INT64_MAX), smem);
    const float g = dy[r];
    float* dr = dx + r * n;
    for (std::int64_t j = G::lane(); j < n; j += G::width()) dr[j] = j == first ? g : 0.f;
  }
}

// inner > 1: one thread per (o, j) walks the axis.
__global__ void reduce_backward_max_cols_kernel(float* dx, const float* dy, const float* x, const float* y,
                                                std::int64_t outer, std::int64_t n, std::int64_t inner) {
  SK_GRID_LOOP(t, outer * inner) {
    const std::int64_t o = t / inner, j = t % inner;
    const std::int64_t base = o * n * inner + j;
    const float target = y[t], g = dy[t];
    bool done = false;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool hit = !done && same_or_both_nan(x[base + i * inner], target);
      dx[base + i * inner] = hit ? g : 0.f;
      done = done || hit;
    }
  }
}

// ============================== logsumexp ==============================

template <bool WARP>
__global__ void __launch_bounds__(512)
logsumexp_rows_kernel(float* y, const float* x, std::int64_t rows, std::int64_t n) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * n;
    float mx = kNegInf;
    for (std::int64_t j = G::lane(); j < n; j += G::width()) mx = fmaxf(mx, xr[j]);
    mx = G::reduce(mx, MaxOp{}, kNegInf, smem);
    if (isinf(mx)) {  // empty, all -inf (-> -inf), or some +inf (-> +inf)
      if (G::lane() == 0) y[r] = mx;
      continue;
    }
    float s = 0.f;
    for (std::int64_t j = G::lane(); j < n; j += G::width()) s += expf(xr[j] - mx);
    s = G::reduce(s, SumOp{}, 0.f, smem);
    if (G::lane() == 0) y[r] = mx + logf(s);
  }
}

__global__ void logsumexp_cols_kernel(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  SK_GRID_LOOP(t, outer * inner) {
    const std::int64_t o = t / inner, j = t % inner;
    const float* p = x + o * n * inner + j;
    float mx = kNegInf;
    for (std::int64_t i = 0; i < n; ++i) mx = fmaxf(mx, p[i * inner]);
    if (isinf(mx)) {
      y[t] = mx;
      continue;
    }
    float s = 0.f;
    for (std::int64_t i = 0; i < n; ++i) s += expf(p[i * inner] - mx);
    y[t] = mx + logf(s);
  }
}

__global__ void logsumexp_backward_kernel(float* dx, const float* dy, const float* x, const float* y,
                                          std::int64_t outer, std::int64_t n, std::int64_t inner) {
  SK_GRID_LOOP(e, outer * n * inner) {
    const std::int64_t t = (e / (n * inner)) * inner + e % inner;
    const float l = y[t];
    dx[e] = (isinf(l) && l < 0.f) ? 0.f : dy[t] * expf(x[e] - l);
  }
}

// ============================== cumsum ==============================

// One thread per (o, j) walking the axis, accumulating in double like the CPU backend.
__global__ void cumsum_seq_kernel(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                                  bool reverse) {
  SK_GRID_LOOP(t, outer * inner) {
    const std::int64_t o = t / inner, j = t % inner;
    const std::int64_t base = o * n * inner + j;
    double s = 0.0;
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t i = reverse ? n - 1 - k : k;
      s += x[base + i * inner];
      y[base + i * inner] = static_cast<float>(s);
    }
  }
}

// inner == 1, long rows: one 256-thread block per row scans chunks of 256 (warp shuffles, double).
constexpr int kScanThreads = 256;
__global__ void __launch_bounds__(kScanThreads)
cumsum_rows_kernel(float* y, const float* x, std::int64_t rows, std::int64_t n, bool reverse) {
  __shared__ double warp_total[kScanThreads / 32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double carry = 0.0;
    for (std::int64_t base = 0; base < n; base += kScanThreads) {
      const std::int64_t p = base + threadIdx.x;
      const std::int64_t j = reverse ? n - 1 - p : p;
      double v = p < n ? static_cast<double>(xr[j]) : 0.0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const double t = __shfl_up_sync(0xffffffffu, v, o);
        if (lane >= o) v += t;
      }
      if (lane == 31) warp_total[w] = v;
      __syncthreads();
      double off = carry, total = carry;
      for (int k = 0; k < kScanThreads / 32; ++k) {
        if (k < w) off += warp_total[k];
        total += warp_total[k];
      }
      if (p < n) yr[j] = static_cast<float>(v + off);
      __syncthreads();  // warp_total is rewritten by the next chunk
      carry = total;
    }
  }
}

// ============================== argmax / topk ==============================

template <bool WARP>
__global__ void __launch_bounds__(512)
argmax_kernel(std::int64_t* idx, const float* x, std::int64_t rows, std::int64_t cols) {
  using G = RowGroup<WARP>;
  __shared__ float sv[32];
  __shared__ std::int64_t si[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * cols;
    float bv = kNegInf;
    std::int64_t bi = INT64_MAX;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) {
      const float v = xr[j];
      if (pair_before(v, j, bv, bi)) {
        bv = v;
        bi = j;
      }
    }
    G::best(bv, bi, sv, si);
    if (G::lane() == 0) idx[r] = bi;
  }
}

// Rows of up to kTopkSortMax columns: bitonic sort of (value, index) pairs in shared memory, best
// first; padding entries (index >= cols) sort last.
constexpr int kTopkThreads = 512;
__device__ __forceinline__ bool topk_before(float va, int ia, float vb, int ib, int cols) {
  const bool pa = ia >= cols, pb = ib >= cols;
  if (pa || pb) return pa ? (pb && ia < ib) : true;
  return pair_before(va, ia, vb, ib);
}

__global__ void __launch_bounds__(kTopkThreads)
topk_sort_kernel(float* values, std::int64_t* indices, const float* x, std::int64_t rows, int cols, int P,
                 std::int64_t k) {
  extern __shared__ float topk_smem[];
  float* sv = topk_smem;
  int* si = reinterpret_cast<int*>(topk_smem + P);
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    for (int t = threadIdx.x; t < P; t += blockDim.x) {
      sv[t] = t < cols ? xr[t] : kNegInf;
      si[t] = t;
    }
    __syncthreads();
    for (int kk = 2; kk <= P; kk <<= 1) {
      for (int j = kk >> 1; j > 0; j >>= 1) {
        for (int t = threadIdx.x; t < P / 2; t += blockDim.x) {
          const int i = (t / j) * 2 * j + (t % j);
          const int l = i + j;
          const bool up = (i & kk) == 0;
          const float vi = sv[i], vl = sv[l];
          const int ii = si[i], il = si[l];
          const bool swap = up ? topk_before(vl, il, vi, ii, cols) : topk_before(vi, ii, vl, il, cols);
          if (swap) {
            sv[i] = vl;
            sv[l] = vi;
            si[i] = il;
            si[l] = ii;
          }
        }
        __syncthreads();
      }
    }
    for (std::int64_t t = threadIdx.x; t < k; t += blockDim.x) {
      values[r * k + t] = sv[t];
      indices[r * k + t] = si[t];
    }
    __syncthreads();  // shared arrays are reloaded for the next row
  }
}

// Longer rows: k rounds of block-wide selection, each picking the best entry ranked strictly after
// the previous pick (the pair order is total, so no entry is picked twice). O(k * cols) per row.
__global__ void __launch_bounds__(kTopkThreads)
topk_select_kernel(float* values, std::int64_t* indices, const float* x, std::int64_t rows, std::int64_t cols,
                   std::int64_t k) {
  __shared__ float sv[32];
  __shared__ std::int64_t si[32];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float pv = 0.f;
    std::int64_t pi = -1;
    for (std::int64_t q = 0; q < k; ++q) {
      float bv = kNegInf;
      std::int64_t bi = INT64_MAX;
      for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        const float v = xr[j];
        if ((pi < 0 || pair_before(pv, pi, v, j)) && pair_before(v, j, bv, bi)) {
          bv = v;
          bi = j;
        }
      }
      block_best(bv, bi, sv, si);
      if (threadIdx.x == 0) {
        values[r * k + q] = bv;
        indices[r * k + q] = bi;
      }
      pv = bv;
      pi = bi;
    }
  }
}

// ============================== launchers ==============================

std::size_t reduce_forward_workspace_bytes(std::int64_t outer, std::int64_t n, std::int64_t inner) {
  const std::int64_t s = inner == 1 ? row_splits(outer, n) : col_splits(outer, n, inner);
  return s > 1 ? static_cast<std::size_t>(outer * s * inner) * sizeof(float) : 0;
}

void launch_reduce_forward(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner, int op,
                           void* workspace, cudaStream_t s) {
  if (inner == 1) {
    const std::int64_t ns = row_splits(outer, n);
    const std::int64_t chunk = ns > 1 ? ceil_div(n, ns) : n;
    auto run = [&](float* out, const float* in, std::int64_t vrows, std::int64_t len, std::int64_t nsplit,
                   std::int64_t ch, int o, float divisor) {
      const RowLaunch rl = row_launch(vrows, ch);
      if (rl.warp) reduce_rows_kernel<true><<<rl.grid, rl.threads, 0, s>>>(out, in, vrows, len, nsplit, ch, o, divisor);
      else reduce_rows_kernel<false><<<rl.grid, rl.threads, 0, s>>>(out, in, vrows, len, nsplit, ch, o, divisor);
      SK_CUDA_LAUNCH_CHECK();
    };
    if (ns == 1) {
      run(y, x, outer, n, 1, n, op, static_cast<float>(n));
    } else {
      float* ws = static_cast<float*>(workspace);
      const int first = op == kMaxReduce ? kMaxReduce : kSum;
      run(ws, x, outer * ns, n, ns, chunk, first, 1.f);
      run(y, ws, outer, ns, 1, ns, op, static_cast<float>(n));
    }
    return;
  }
  const std::int64_t ns = col_splits(outer, n, inner);
  const std::int64_t chunk = ns > 1 ? ceil_div(n, ns) : n;
  const std::int64_t tiles = outer * ceil_div(inner, kColTx);
  const dim3 grid(static_cast<unsigned>(tiles < kMaxBlocks ? tiles : kMaxBlocks), static_cast<unsigned>(ns));
  const dim3 block(kColTx, kColTy);
  float* out = ns > 1 ? static_cast<float*>(workspace) : y;
  reduce_cols_kernel<<<grid, block, 0, s>>>(out, x, outer, n, inner, ns, chunk, op);
  SK_CUDA_LAUNCH_CHECK();
  if (ns > 1) {
    reduce_cols_finish_kernel<<<grid_for(outer * inner), kThreads, 0, s>>>(y, out, outer, n, inner, ns, op);
    SK_CUDA_LAUNCH_CHECK();
  }
}

void launch_reduce_backward(float* dx, const float* dy, const float* x, const float* y, std::int64_t outer,
                            std::int64_t n, std::int64_t inner, int op, cudaStream_t s) {
  if (op != kMaxReduce) {
    const float mul = op == kMean ? static_cast<float>(n) : 1.f;
    reduce_backward_sum_kernel<<<grid_for(outer * n * inner), kThreads, 0, s>>>(dx, dy, outer, n, inner, mul);
  } else if (inner == 1) {
    const RowLaunch rl = row_launch(outer, n);
    if (rl.warp) reduce_backward_max_rows_kernel<true><<<rl.grid, rl.threads, 0, s>>>(dx, dy, x, y, outer, n);
    else reduce_backward_max_rows_kernel<false><<<rl.grid, rl.threads, 0, s>>>(dx, dy, x, y, outer, n);
  } else {
    reduce_backward_max_cols_kernel<<<grid_for(outer * inner), kThreads, 0, s>>>(dx, dy, x, y, outer, n, inner);
  }
  SK_CUDA_LAUNCH_CHECK();
}

void launch_logsumexp_forward(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                              cudaStream_t s) {
  if (inner == 1) {
    const RowLaunch rl = row_launch(outer, n);
    if (rl.warp) logsumexp_rows_kernel<true><<<rl.grid, rl.threads, 0, s>>>(y, x, outer, n);
    else logsumexp_rows_kernel<false><<<rl.grid, rl.threads, 0, s>>>(y, x, outer, n);
  } else {
    logsumexp_cols_kernel<<<grid_for(outer * inner), kThreads, 0, s>>>(y, x, outer, n, inner);
  }
  SK_CUDA_LAUNCH_CHECK();
}

void launch_logsumexp_backward(float* dx, const float* dy, const float* x, const float* y, std::int64_t outer,
                               std::int64_t n, std::int64_t inner, cudaStream_t s) {
  logsumexp_backward_kernel<<<grid_for(outer * n * inner), kThreads, 0, s>>>(dx, dy, x, y, outer, n, inner);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_cumsum_forward(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                           bool reverse, cudaStream_t s) {
  if (inner == 1 && n > 64) {
    const unsigned g = static_cast<unsigned>(outer < kMaxBlocks ? outer : kMaxBlocks);
    cumsum_rows_kernel<<<g, kScanThreads, 0, s>>>(y, x, outer, n, reverse);
  } else {
    cumsum_seq_kernel<<<grid_for(outer * inner), kThreads, 0, s>>>(y, x, outer, n, inner, reverse);
  }
  SK_CUDA_LAUNCH_CHECK();
}

void launch_argmax(std::int64_t* idx, const float* x, std::int64_t rows, std::int64_t cols, cudaStream_t s) {
  const RowLaunch rl = row_launch(rows, cols);
  if (rl.warp) argmax_kernel<true><<<rl.grid, rl.threads, 0, s>>>(idx, x, rows, cols);
  else argmax_kernel<false><<<rl.grid, rl.threads, 0, s>>>(idx, x, rows, cols);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_topk(float* values, std::int64_t* indices, const float* x, std::int64_t rows, std::int64_t cols,
                 std::int64_t k, cudaStream_t s) {
  const unsigned g = static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks);
  // Sort path while the padded row fits the block's shared memory (opt-in limit of this device).
  int dev = 0, optin = 48 * 1024;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  std::int64_t P = 2;
  while (P < cols) P <<= 1;
  const std::size_t smem = static_cast<std::size_t>(P) * (sizeof(float) + sizeof(int));
  if (smem <= static_cast<std::size_t>(optin)) {
    if (smem > 48 * 1024)
      CUDA_CHECK(cudaFuncSetAttribute(topk_sort_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(smem)));
    const int threads = P / 2 < kTopkThreads ? static_cast<int>(P / 2 < 32 ? 32 : P / 2) : kTopkThreads;
    topk_sort_kernel<<<g, threads, smem, s>>>(values, indices, x, rows, static_cast<int>(cols), static_cast<int>(P), k);
  } else {
    topk_select_kernel<<<g, kTopkThreads, 0, s>>>(values, indices, x, rows, cols, k);
  }
  SK_CUDA_LAUNCH_CHECK();
}

}  // namespace sk::cu
