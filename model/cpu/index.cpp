// index.cpp — gather_rows / scatter_add_rows (bucket gather and its backward), topk, argmax.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

namespace {
void check_rows(const char* op, const Tensor& idx, std::int64_t R) {
  const std::int64_t* p = i64(idx);
  const std::int64_t n = idx.numel();
  for (std::int64_t i = 0; i < n; ++i)
    SK_CHECK(p[i] >= 0 && p[i] < R, op, ": index ", p[i], " at position ", i, " is outside [0, ", R, ")");
}

// Order used by topk/argmax: larger first; NaN counts as the largest (as PyTorch does).
inline bool greater(float a, float b) {
  if (std::isnan(a)) return !std::isnan(b);
  if (std::isnan(b)) return false;
  return a > b;
}
}  // namespace

// out[n, k, :] = x[n, idx[n, k], :]
void CpuBackend::do_gather_rows(Tensor& y, const Tensor& x, const Tensor& idx) {
  const std::int64_t N = x.dim(0), R = x.dim(1), C = x.dim(2), K = idx.dim(1);
  check_rows("gather_rows", idx, R);
  const std::size_t row = static_cast<std::size_t>(C) * dtype_size(x.dtype());
  const std::int64_t* pi = i64(idx);
  auto* py = static_cast<char*>(y.raw());
  const auto* px = static_cast<const char*>(x.raw());
#pragma omp parallel for if (N * K * C > kParallelMin) schedule(static)
  for (std::int64_t t = 0; t < N * K; ++t) {
    const std::int64_t n = t / K;
    std::memcpy(py + static_cast<std::size_t>(t) * row, px + static_cast<std::size_t>(n * R + pi[t]) * row, row);
  }
}

// dx[n, idx[n, k], :] += dy[n, k, :]   (parallel over n: different n never share rows)
void CpuBackend::do_scatter_add_rows(Tensor& dx, const Tensor& dy, const Tensor& idx) {
  const std::int64_t N = dx.dim(0), R = dx.dim(1), C = dx.dim(2), K = idx.dim(1);
  check_rows("scatter_add_rows", idx, R);
  const std::int64_t* pi = i64(idx);
  float* pd = f32(dx);
  const float* pg = f32(dy);
#pragma omp parallel for if (N * K * C > kParallelMin) schedule(static)
  for (std::int64_t n = 0; n < N; ++n) {
    for (std::int64_t k = 0; k < K; ++k) {
      float* d = pd + (n * R + pi[n * K + k]) * C;
      const float* s = pg + (n * K + k) * C;
      for (std::int64_t j = 0; j < C; ++j) d[j] += s[j];
    }
  }
}

void CpuBackend::do_topk(Tensor& values, Tensor& indices, const Tensor& x, std::int64_t k) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  const float* px = f32(x);
  float* pv = f32(values);
  auto* pi = static_cast<std::int64_t*>(indices.raw());
#pragma omp parallel if (rows * cols > kParallelMin)
  {
    std::vector<std::int64_t> order(static_cast<std::size_t>(cols));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* xr = px + r * cols;
      std::iota(order.begin(), order.end(), std::int64_t{0});
      auto before = [xr](std::int64_t a, std::int64_t b) {
        if (greater(xr[a], xr[b])) return true;
        if (greater(xr[b], xr[a])) return false;
        return a < b;  // equal values: lower index first
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (std::int64_t j = 0; j < k; ++j) {
        pi[r * k + j] = order[static_cast<std::size_t>(j)];
        pv[r * k + j] = xr[order[static_cast<std::size_t>(j)]];
      }
    }
  }
}

void CpuBackend::do_argmax(Tensor& idx, const Tensor& x) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  const float* px = f32(x);
  auto* pi = static_cast<std::int64_t*>(idx.raw());
#pragma omp parallel for if (rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * cols;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < cols; ++j)
      if (greater(xr[j], xr[best])) best = j;
    pi[r] = best;
  }
}

}  // namespace sk
