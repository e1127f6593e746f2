// layernorm.cu — LayerNorm over the last axis (biased variance), forward and backward; the formulas
// are model/cpu/layernorm.cpp's:
//   forward:  mean, rstd = 1/sqrt(var + eps) (two passes over the row); y = (x - mean) * rstd * w + b
//   backward: xhat = (x - mean) * rstd; g = dy * w;
//             dx = rstd * (g - mean(g) - xhat * mean(g * xhat))          (one row group per row)
//             dw += sum_rows dy * xhat; db += sum_rows dy                  (column sums)
// Parameter gradients ACCUMULATE and are computed without atomics: threads run along the columns,
// the rows are cut into a shape-determined number of segments whose partial sums are added in a
// fixed order, so dw/db are deterministic.
#include <cstdint>

#include <cuda_runtime.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/device/common.cuh"
#include "model/cuda/device/reduce.cuh"
#include "model/cuda/launchers.h"

namespace sk::cu {

namespace {
constexpr int kTx = 32, kTy = 8;
constexpr std::int64_t kTargetBlocks = 512;

// Row segments for the dw/db column sums (1: no second pass).
std::int64_t param_splits(std::int64_t rows, std::int64_t cols) {
  const std::int64_t tiles = ceil_div(cols, kTx);
  if (tiles >= kTargetBlocks / 2 || rows <= 64) return 1;
  std::int64_t s = ceil_div(kTargetBlocks, tiles);
  const std::int64_t by_len = ceil_div(rows, 64);
  if (s > by_len) s = by_len;
  if (s > 1024) s = 1024;
  const std::int64_t chunk = ceil_div(rows, s);
  return ceil_div(rows, chunk);
}
}  // namespace

// ============================== kernels ==============================

template <bool WARP>
__global__ void __launch_bounds__(512)
layernorm_forward_kernel(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                         std::int64_t rows, std::int64_t cols, float eps) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  const float inv_c = 1.f / static_cast<float>(cols);
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float s = 0.f;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) s += xr[j];
    const float m = G::reduce(s, SumOp{}, 0.f, smem) * inv_c;
    float v = 0.f;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) {
      const float d = xr[j] - m;
      v += d * d;
    }
    v = G::reduce(v, SumOp{}, 0.f, smem) * inv_c;
    const float rs = 1.f / sqrtf(v + eps);
    if (G::lane() == 0) {
      mean[r] = m;
      rstd[r] = rs;
    }
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) {
      float o = (xr[j] - m) * rs;
      if (w) o *= w[j];
      if (b) o += b[j];
      yr[j] = o;
    }
  }
}

template <bool WARP>
__global__ void __launch_bounds__(512)
layernorm_backward_dx_kernel(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                             const float* rstd, std::int64_t rows, std::int64_t cols) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  const float inv_c = 1.f / static_cast<float>(cols);
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    float* dr = dx + r * cols;
    const float m = mean[r], rs = rstd[r];
    float sg = 0.f, sgx = 0.f;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) {
      const float g = w ? gr[j] * w[j] : gr[j];
      sg += g;
      sgx += g * ((xr[j] - m) * rs);
    }
    const float mg = G::reduce(sg, SumOp{}, 0.f, smem) * inv_c;
    const float mgx = G::reduce(sgx, SumOp{}, 0.f, smem) * inv_c;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) {
      const float g = w ? gr[j] * w[j] : gr[j];
      const float xh = (xr[j] - m) * rs;
      dr[j] = rs * (g - mg - xh * mgx);
    }
  }
}

// Block (32, 8) per 32 columns and row segment. nsplit == 1: adds straight into dw/db; else writes
// partials ws_w/ws_b [nsplit, cols].
__global__ void __launch_bounds__(kTx * kTy)
layernorm_backward_params_kernel(float* dw, float* db, float* ws_w, float* ws_b, const float* dy, const float* x,
                                 const float* mean, const float* rstd, std::int64_t rows, std::int64_t cols,
                                 std::int64_t nsplit, std::int64_t chunk) {
  __shared__ float pw[kTy][kTx + 1];
  __shared__ float pb[kTy][kTx + 1];
  const std::int64_t sp = blockIdx.y;
  const std::int64_t r0 = sp * chunk;
  const std::int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const std::int64_t ncb = ceil_div(cols, kTx);
  for (std::int64_t cb = blockIdx.x; cb < ncb; cb += gridDim.x) {
    const std::int64_t c = cb * kTx + tx;
    float aw = 0.f, ab = 0.f;
    if (c < cols) {
      for (std::int64_t r = r0 + ty; r < r1; r += kTy) {
        const float g = dy[r * cols + c];
        aw += g * ((x[r * cols + c] - mean[r]) * rstd[r]);
        ab += g;
      }
    }
    pw[ty][tx] = aw;
    pb[ty][tx] = ab;
    __syncthreads();
    if (ty == 0 && c < cols) {
      for (int k = 1; k < kTy; ++k) {
        aw += pw[k][tx];
        ab += pb[k][tx];
      }
      if (nsplit == 1) {
        if (dw) dw[c] += aw;
        if (db) db[c] += ab;
      } else {
        ws_w[sp * cols + c] = aw;
        ws_b[sp * cols + c] = ab;
      }
    }
    __syncthreads();
  }
}

__global__ void layernorm_backward_params_finish_kernel(float* dw, float* db, const float* ws_w, const float* ws_b,
                                                        std::int64_t cols, std::int64_t nsplit) {
  SK_GRID_LOOP(c, cols) {
    float aw = 0.f, ab = 0.f;
    for (std::int64_t s = 0; s < nsplit; ++s) {
      aw += ws_w[s * cols + c];
      ab += ws_b[s * cols + c];
    }
    if (dw) dw[c] += aw;
    if (db) db[c] += ab;
  }
}

// ============================== launchers ==============================

void launch_layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                              std::int64_t rows, std::int64_t cols, float eps, cudaStream_t s) {
  const RowLaunch rl = row_launch(rows, cols);
  if (rl.warp) layernorm_forward_kernel<true><<<rl.grid, rl.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, cols, eps);
  else layernorm_forward_kernel<false><<<rl.grid, rl.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, cols, eps);
  SK_CUDA_LAUNCH_CHECK();
}

std::size_t layernorm_backward_workspace_bytes(std::int64_t rows, std::int64_t cols) {
  const std::int64_t ns = param_splits(rows, cols);
  return ns > 1 ? static_cast<std::size_t>(2 * ns * cols) * sizeof(float) : 0;
}

void launch_layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                               const float* mean, const float* rstd, std::int64_t rows, std::int64_t cols,
                               void* workspace, cudaStream_t s) {
  const RowLaunch rl = row_launch(rows, cols);
  if (rl.warp) layernorm_backward_dx_kernel<true><<<rl.grid, rl.threads, 0, s>>>(dx, dy, x, w, mean, rstd, rows, cols);
  else layernorm_backward_dx_kernel<false><<<rl.grid, rl.threads, 0, s>>>(dx, dy, x, w, mean, rstd, rows, cols);
  SK_CUDA_LAUNCH_CHECK();
  if (!dw && !db) return;
  const std::int64_t ns = param_splits(rows, cols);
  const std::int64_t chunk = ceil_div(rows, ns);
  const std::int64_t ncb = ceil_div(cols, kTx);
  float* ws_w = ns > 1 ? static_cast<float*>(workspace) : nullptr;
  float* ws_b = ns > 1 ? ws_w + ns * cols : nullptr;
  const dim3 grid(static_cast<unsigned>(ncb < kMaxBlocks ? ncb : kMaxBlocks), static_cast<unsigned>(ns));
  layernorm_backward_params_kernel<<<grid, dim3(kTx, kTy), 0, s>>>(dw, db, ws_w, ws_b, dy, x, mean, rstd, rows, cols,
                                                                   ns, chunk);
  SK_CUDA_LAUNCH_CHECK();
  if (ns > 1) {
    layernorm_backward_params_finish_kernel<<<grid_for(cols), kThreads, 0, s>>>(dw, db, ws_w, ws_b, cols, ns);
    SK_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace sk::cu
