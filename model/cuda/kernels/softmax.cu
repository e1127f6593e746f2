// softmax.cu — softmax (mask overwrite-fill, scale) and log_softmax over the last axis with their
// backward passes, and cross-entropy with ignore_index. Rows go to a warp (<= 1024 columns) or a
// block (device/reduce.cuh). Formulas follow model/cpu/softmax.cpp and xent.cpp:
//   softmax:      s_j = mask_j ? scale * x_j : fill;  y = exp(s - max s) / sum
//   backward:     dx_j = mask_j ? scale * y_j * (dy_j - sum_k dy_k y_k) : 0
//   log_softmax:  y = x - (max + log sum exp(x - max));  dx = dy - exp(y) * sum dy
//   cross-entropy: lse_r; loss = mean over counted rows of lse_r - x[r, t_r]; the count and any
//                  target outside [0, V) (not ignore_index) are returned for the host to check.
#include <cstdint>

#include <cuda_runtime.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/device/common.cuh"
#include "model/cuda/device/reduce.cuh"
#include "model/cuda/launchers.h"

namespace sk::cu {

namespace {
constexpr float kNegInf = -__builtin_huge_valf();
}

// ============================== kernels ==============================

template <bool WARP>
__global__ void __launch_bounds__(512)
softmax_forward_kernel(float* y, const float* x, const std::uint8_t* mask, std::int64_t rows, std::int64_t cols,
                       float scale, float fill) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * cols;
    const std::uint8_t* mr = mask ? mask + r * cols : nullptr;
    float* yr = y + r * cols;
    auto score = [&](std::int64_t j) { return (mr && !mr[j]) ? fill : scale * xr[j]; };
    float mx = kNegInf;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) mx = fmaxf(mx, score(j));
    mx = G::reduce(mx, MaxOp{}, kNegInf, smem);
    float sum = 0.f;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) sum += expf(score(j) - mx);
    sum = G::reduce(sum, SumOp{}, 0.f, smem);
    const float inv = 1.f / sum;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) yr[j] = expf(score(j) - mx) * inv;
  }
}

template <bool WARP>
__global__ void __launch_bounds__(512)
softmax_backward_kernel(float* dx, const float* dy, const float* y, const std::uint8_t* mask, std::int64_t rows,
                        std::int64_t cols, float scale) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* gr = dy + r * cols;
    const float* yr = y + r * cols;
    const std::uint8_t* mr = mask ? mask + r * cols : nullptr;
    float* dr = dx + r * cols;
    float dot = 0.f;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) dot += gr[j] * yr[j];
    dot = G::reduce(dot, SumOp{}, 0.f, smem);
    for (std::int64_t j = G::lane(); j < cols; j += G::width())
      dr[j] = (mr && !mr[j]) ? 0.f : scale * yr[j] * (gr[j] - dot);
  }
}

// Row log-sum-exp as the CPU's log_softmax / cross-entropy compute it (no special case for inf).
template <class G>
__device__ __forceinline__ float row_lse(const float* xr, std::int64_t cols, float* smem) {
  float mx = kNegInf;
  for (std::int64_t j = G::lane(); j < cols; j += G::width()) mx = fmaxf(mx, xr[j]);
  mx = G::reduce(mx, MaxOp{}, kNegInf, smem);
  float sum = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += G::width()) sum += expf(xr[j] - mx);
  sum = G::reduce(sum, SumOp{}, 0.f, smem);
  return mx + logf(sum);
}

template <bool WARP>
__global__ void __launch_bounds__(512)
log_softmax_forward_kernel(float* y, const float* x, std::int64_t rows, std::int64_t cols) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const float lse = row_lse<G>(xr, cols, smem);
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) yr[j] = xr[j] - lse;
  }
}

template <bool WARP>
__global__ void __launch_bounds__(512)
log_softmax_backward_kernel(float* dx, const float* dy, const float* y, std::int64_t rows, std::int64_t cols) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* gr = dy + r * cols;
    const float* yr = y + r * cols;
    float* dr = dx + r * cols;
    float s = 0.f;
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) s += gr[j];
    s = G::reduce(s, SumOp{}, 0.f, smem);
    for (std::int64_t j = G::lane(); j < cols; j += G::width()) dr[j] = gr[j] - expf(yr[j]) * s;
  }
}

// Row status for cross-entropy: 0 ignored, 1 counted, 2 bad target.
template <bool WARP>
__global__ void __launch_bounds__(512)
cross_entropy_rows_kernel(float* lse, float* row_loss, int* status, const float* logits,
                          const std::int64_t* targets, std::int64_t rows, std::int64_t cols, std::int64_t ignore) {
  using G = RowGroup<WARP>;
  __shared__ float smem[32];
  SK_ROW_LOOP(G, r, rows) {
    const float* xr = logits + r * cols;
    const float l = row_lse<G>(xr, cols, smem);
    if (G::lane() == 0) {
      lse[r] = l;
      const std::int64_t t = targets[r];
      if (t == ignore) {
        row_loss[r] = 0.f;
        status[r] = 0;
      } else if (t >= 0 && t < cols) {
        row_loss[r] = l - xr[t];
        status[r] = 1;
      } else {
        row_loss[r] = 0.f;
        status[r] = 2;
      }
    }
  }
}

// One block: loss = sum of counted row losses (double, fixed order per thread then a fixed tree) / count.
constexpr int kFinishThreads = 1024;
__global__ void __launch_bounds__(kFinishThreads)
cross_entropy_finish_kernel(float* loss, std::int64_t* result, const float* row_loss, const int* status,
                            std::int64_t rows) {
  __shared__ double sd[32];
  __shared__ std::int64_t si[32];
  double sum = 0.0;
  std::int64_t counted = 0, bad = 0, first_bad = INT64_MAX;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int st = status[r];
    if (st == 1) {
      sum += static_cast<double>(row_loss[r]);
      counted++;
    } else if (st == 2) {
      bad++;
      if (r < first_bad) first_bad = r;
    }
  }
  sum = block_reduce(sum, SumOp{}, 0.0, sd);
  counted = block_reduce(counted, SumOp{}, std::int64_t{0}, si);
  bad = block_reduce(bad, SumOp{}, std::int64_t{0}, si);
  first_bad = block_reduce(first_bad, MinI64Op{}, static_cast<std::int64_t>(INT64_MAX), si);
  if (threadIdx.x == 0) {
    loss[0] = counted ? static_cast<float>(sum / static_cast<double>(counted)) : 0.f;
    result[0] = counted;
    result[1] = bad;
    result[2] = bad ? first_bad : -1;
  }
}

__global__ void cross_entropy_backward_kernel(float* dx, const float* logits, const std::int64_t* targets,
                                              const float* lse, std::int64_t rows, std::int64_t cols, float scale,
                                              std::int64_t ignore, int* err) {
  SK_GRID_LOOP(e, rows * cols) {
    const std::int64_t r = e / cols, j = e % cols;
    const std::int64_t t = targets[r];
    float d = 0.f;
    if (t != ignore) {
      if (t >= 0 && t < cols) {
        d = scale * expf(logits[e] - lse[r]);
        if (j == t) d -= scale;
      } else if (j == 0) {
        atomicOr(err, kErrCrossEntropyBackward);
      }
    }
    dx[e] = d;
  }
}

// ============================== launchers ==============================

#define SK_ROW_DISPATCH(kernel, rows, cols, ...)                                        \
  do {                                                                                  \
    const RowLaunch rl_ = row_launch(rows, cols);                                       \
    if (rl_.warp) kernel<true><<<rl_.grid, rl_.threads, 0, s>>>(__VA_ARGS__);           \
    else kernel<false><<<rl_.grid, rl_.threads, 0, s>>>(__VA_ARGS__);                   \
    SK_CUDA_LAUNCH_CHECK();                                                             \
  } while (0)

void launch_softmax_forward(float* y, const float* x, const std::uint8_t* mask, std::int64_t rows, std::int64_t cols,
                            float scale, float fill, cudaStream_t s) {
  SK_ROW_DISPATCH(softmax_forward_kernel, rows, cols, y, x, mask, rows, cols, scale, fill);
}

void launch_softmax_backward(float* dx, const float* dy, const float* y, const std::uint8_t* mask, std::int64_t rows,
                             std::int64_t cols, float scale, cudaStream_t s) {
  SK_ROW_DISPATCH(softmax_backward_kernel, rows, cols, dx, dy, y, mask, rows, cols, scale);
}

void launch_log_softmax_forward(float* y, const float* x, std::int64_t rows, std::int64_t cols, cudaStream_t s) {
  SK_ROW_DISPATCH(log_softmax_forward_kernel, rows, cols, y, x, rows, cols);
}

void launch_log_softmax_backward(float* dx, const float* dy, const float* y, std::int64_t rows, std::int64_t cols,
                                 cudaStream_t s) {
  SK_ROW_DISPATCH(log_softmax_backward_kernel, rows, cols, dx, dy, y, rows, cols);
}

std::size_t cross_entropy_forward_workspace_bytes(std::int64_t rows) {
  return static_cast<std::size_t>(rows) * (sizeof(float) + sizeof(int));
}

void launch_cross_entropy_forward(float* loss, float* lse, std::int64_t* result, const float* logits,
                                  const std::int64_t* targets, std::int64_t rows, std::int64_t cols,
                                  std::int64_t ignore_index, void* workspace, cudaStream_t s) {
  float* row_loss = static_cast<float*>(workspace);
  int* status = reinterpret_cast<int*>(row_loss + rows);
  SK_ROW_DISPATCH(cross_entropy_rows_kernel, rows, cols, lse, row_loss, status, logits, targets, rows, cols,
                  ignore_index);
  cross_entropy_finish_kernel<<<1, kFinishThreads, 0, s>>>(loss, result, row_loss, status, rows);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_cross_entropy_backward(float* dlogits, const float* logits, const std::int64_t* targets, const float* lse,
                                   std::int64_t rows, std::int64_t cols, float scale, std::int64_t ignore_index,
                                   int* err, cudaStream_t s) {
  cross_entropy_backward_kernel<<<grid_for(rows * cols), kThreads, 0, s>>>(dlogits, logits, targets, lse, rows, cols,
                                                                           scale, ignore_index, err);
  SK_CUDA_LAUNCH_CHECK();
}

}  // namespace sk::cu
