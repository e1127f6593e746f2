// reduce.cpp — reductions over one axis (x seen as [outer, n, inner]): sum/mean/max, logsumexp,
// cumsum, with backward. Sums accumulate in double.
#include <algorithm>
#include <cmath>
#include <limits>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

void CpuBackend::do_reduce(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                           ReduceOp op) {
  float* py = f32(y);
  const float* px = f32(x);
  const std::int64_t m = outer * inner;
  if (op != ReduceOp::max && inner > 1) {
    // Sums over a strided axis (bias gradients, sum_to): walk the rows contiguously, a block of
    // columns at a time, with one double accumulator per column. Each output is still the sum of
    // its n inputs in ascending order, as in the scalar loop below.
    constexpr std::int64_t kBlock = 64;
    const std::int64_t nb = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for if (m * n > kParallelMin) schedule(static)
    for (std::int64_t t = 0; t < outer * nb; ++t) {
      const std::int64_t o = t / nb, i0 = (t % nb) * kBlock, w = std::min(kBlock, inner - i0);
      double acc[kBlock] = {};
      const float* p = px + o * n * inner + i0;
      for (std::int64_t j = 0; j < n; ++j, p += inner)
        for (std::int64_t k = 0; k < w; ++k) acc[k] += p[k];
      for (std::int64_t k = 0; k < w; ++k) {
        double s = acc[k];
        if (op == ReduceOp::mean) s = n ? s / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
        py[o * inner + i0 + k] = static_cast<float>(s);
      }
    }
    return;
  }
#pragma omp parallel for if (m * n > kParallelMin) schedule(static)
  for (std::int64_t t = 0; t < m; ++t) {
    const std::int64_t o = t / inner, i = t % inner;
    const float* p = px + o * n * inner + i;
    if (op == ReduceOp::max) {
      float best = p[0];
      for (std::int64_t j = 1; j < n; ++j) {
        const float v = p[j * inner];
        if (v > best || std::isnan(v)) best = v;
        if (std::isnan(best)) break;
      }
      py[t] = best;
    } else {
      double s = 0.0;
      for (std::int64_t j = 0; j < n; ++j) s += p[j * inner];
      if (op == ReduceOp::mean) s = n ? s / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
      py[t] = static_cast<float>(s);
    }
  }
}

void CpuBackend::do_reduce_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, std::int64_t outer,
                                    std::int64_t n, std::int64_t inner, ReduceOp op) {
  float* pdx = f32(dx);
  const float* pdy = f32(dy);
  const float* px = f32(x);
  const float* py = op == ReduceOp::max ? f32(y) : nullptr;
  const std::int64_t m = outer * inner;
#pragma omp parallel for if (m * n > kParallelMin) schedule(static)
  for (std::int64_t t = 0; t < m; ++t) {
    const std::int64_t o = t / inner, i = t % inner;
    const std::int64_t base = o * n * inner + i;
    const float g = pdy[t];
    if (op == ReduceOp::max) {
      // The gradient goes to the first position holding the maximum.
      bool done = false;
      for (std::int64_t j = 0; j < n; ++j) {
        const float v = px[base + j * inner];
        const bool hit = !done && (v == py[t] || (std::isnan(v) && std::isnan(py[t])));
        pdx[base + j * inner] = hit ? g : 0.f;
        done = done || hit;
      }
    } else {
      const float v = op == ReduceOp::mean ? g / static_cast<float>(n) : g;
      for (std::int64_t j = 0; j < n; ++j) pdx[base + j * inner] = v;
    }
  }
}

void CpuBackend::do_logsumexp(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  float* py = f32(y);
  const float* px = f32(x);
  const std::int64_t m = outer * inner;
#pragma omp parallel for if (m * n > kParallelMin) schedule(static)
  for (std::int64_t t = 0; t < m; ++t) {
    const std::int64_t o = t / inner, i = t % inner;
    const float* p = px + o * n * inner + i;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < n; ++j) mx = std::fmax(mx, p[j * inner]);
    if (std::isinf(mx)) {  // empty, all -inf (-> -inf) or some +inf (-> +inf)
      py[t] = mx;
      continue;
    }
    double s = 0.0;
    for (std::int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(p[j * inner]) - mx);
    py[t] = static_cast<float>(mx + std::log(s));
  }
}

void CpuBackend::do_logsumexp_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                       std::int64_t outer, std::int64_t n, std::int64_t inner) {
  float* pdx = f32(dx);
  const float* pdy = f32(dy);
  const float* px = f32(x);
  const float* py = f32(y);
  const std::int64_t m = outer * inner;
#pragma omp parallel for if (m * n > kParallelMin) schedule(static)
  for (std::int64_t t = 0; t < m; ++t) {
    const std::int64_t o = t / inner, i = t % inner;
    const std::int64_t base = o * n * inner + i;
    const float g = pdy[t], l = py[t];
    for (std::int64_t j = 0; j < n; ++j) {
      const float v = px[base + j * inner];
      pdx[base + j * inner] = std::isinf(l) && l < 0 ? 0.f : g * std::exp(v - l);
    }
  }
}

void CpuBackend::do_cumsum(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                           bool reverse) {
  float* py = f32(y);
  const float* px = f32(x);
  const std::int64_t m = outer * inner;
#pragma omp parallel for if (m * n > kParallelMin) schedule(static)
  for (std::int64_t t = 0; t < m; ++t) {
    const std::int64_t o = t / inner, i = t % inner;
    const std::int64_t base = o * n * inner + i;
    double s = 0.0;
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t j = reverse ? n - 1 - k : k;
      s += px[base + j * inner];
      py[base + j * inner] = static_cast<float>(s);
    }
  }
}

}  // namespace sk
