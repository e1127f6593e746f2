// softmax.cpp — softmax (optional mask, scale, fill) and log_softmax over the last axis, with
// backward. Stable: the row maximum is subtracted before exponentiating; sums in double.
#include <cmath>
#include <limits>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

void CpuBackend::do_softmax(Tensor& y, const Tensor& x, const Tensor& mask, float scale, float fill) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  float* py = f32(y);
  const float* px = f32(x);
  const std::uint8_t* pm = mask.defined() ? u8(mask) : nullptr;
#pragma omp parallel for if (rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * cols;
    const std::uint8_t* mr = pm ? pm + r * cols : nullptr;
    float* yr = py + r * cols;
    // Scores: scale*x, masked entries replaced by `fill` (written to y as scratch).
    float mx = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < cols; ++j) {
      const float s = (mr && !mr[j]) ? fill : scale * xr[j];
      yr[j] = s;
      mx = std::fmax(mx, s);
    }
    double sum = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float e = std::exp(yr[j] - mx);
      yr[j] = e;
      sum += e;
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (std::int64_t j = 0; j < cols; ++j) yr[j] *= inv;
  }
}

void CpuBackend::do_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, const Tensor& mask, float scale) {
  const std::int64_t cols = last_dim(y), rows = y.numel() / cols;
  float* pdx = f32(dx);
  const float* pdy = f32(dy);
  const float* py = f32(y);
  const std::uint8_t* pm = mask.defined() ? u8(mask) : nullptr;
#pragma omp parallel for if (rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gr = pdy + r * cols;
    const float* yr = py + r * cols;
    const std::uint8_t* mr = pm ? pm + r * cols : nullptr;
    float* dr = pdx + r * cols;
    double dot = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) dot += static_cast<double>(gr[j]) * yr[j];
    const float d = static_cast<float>(dot);
    for (std::int64_t j = 0; j < cols; ++j) dr[j] = (mr && !mr[j]) ? 0.f : scale * yr[j] * (gr[j] - d);
  }
}

void CpuBackend::do_log_softmax(Tensor& y, const Tensor& x) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  float* py = f32(y);
  const float* px = f32(x);
#pragma omp parallel for if (rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * cols;
    float* yr = py + r * cols;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < cols; ++j) mx = std::fmax(mx, xr[j]);
    double sum = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(xr[j]) - mx);
    const float lse = static_cast<float>(mx + std::log(sum));
    for (std::int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - lse;
  }
}

void CpuBackend::do_log_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y) {
  const std::int64_t cols = last_dim(y), rows = y.numel() / cols;
  float* pdx = f32(dx);
  const float* pdy = f32(dy);
  const float* py = f32(y);
#pragma omp parallel for if (rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gr = pdy + r * cols;
    const float* yr = py + r * cols;
    float* dr = pdx + r * cols;
    double s = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) s += gr[j];
    const float sf = static_cast<float>(s);
    for (std::int64_t j = 0; j < cols; ++j) dr[j] = gr[j] - std::exp(yr[j]) * sf;
  }
}

}  // namespace sk
