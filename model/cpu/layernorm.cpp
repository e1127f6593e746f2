// layernorm.cpp — LayerNorm over the last axis (biased variance), forward and backward.
//   forward:  mean, rstd = 1/sqrt(var + eps); y = (x - mean) * rstd * w + b
//   backward: xhat = (x - mean) * rstd; g = dy * w;
//             dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); dw += sum_rows dy*xhat; db += sum_rows dy
#include <cmath>
#include <vector>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

void CpuBackend::do_layernorm(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                              const Tensor& b, float eps) {
  const std::int64_t C = last_dim(x), rows = x.numel() / C;
  const float* px = f32(x);
  const float* pw = w.defined() ? f32(w) : nullptr;
  const float* pb = b.defined() ? f32(b) : nullptr;
  float* py = f32(y);
  float* pm = f32(mean);
  float* ps = f32(rstd);
#pragma omp parallel for if (rows * C > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * C;
    float* yr = py + r * C;
    double s = 0.0;
    for (std::int64_t j = 0; j < C; ++j) s += xr[j];
    const double mu = s / static_cast<double>(C);
    double v = 0.0;
    for (std::int64_t j = 0; j < C; ++j) {
      const double d = xr[j] - mu;
      v += d * d;
    }
    v /= static_cast<double>(C);
    const float m = static_cast<float>(mu);
    const float rs = static_cast<float>(1.0 / std::sqrt(v + static_cast<double>(eps)));
    pm[r] = m;
    ps[r] = rs;
    for (std::int64_t j = 0; j < C; ++j) {
      float o = (xr[j] - m) * rs;
      if (pw) o *= pw[j];
      if (pb) o += pb[j];
      yr[j] = o;
    }
  }
}

void CpuBackend::do_layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dy, const Tensor& x,
                                       const Tensor& w, const Tensor& mean, const Tensor& rstd) {
  const std::int64_t C = last_dim(x), rows = x.numel() / C;
  const float* px = f32(x);
  const float* pdy = f32(dy);
  const float* pw = w.defined() ? f32(w) : nullptr;
  const float* pm = f32(mean);
  const float* ps = f32(rstd);
  float* pdx = f32(dx);
#pragma omp parallel for if (rows * C > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * C;
    const float* gr = pdy + r * C;
    float* dr = pdx + r * C;
    const float m = pm[r], rs = ps[r];
    double sg = 0.0, sgx = 0.0;
    for (std::int64_t j = 0; j < C; ++j) {
      const float g = pw ? gr[j] * pw[j] : gr[j];
      const float xh = (xr[j] - m) * rs;
      sg += g;
      sgx += static_cast<double>(g) * xh;
    }
    const float mg = static_cast<float>(sg / static_cast<double>(C));
    const float mgx = static_cast<float>(sgx / static_cast<double>(C));
    for (std::int64_t j = 0; j < C; ++j) {
      const float g = pw ? gr[j] * pw[j] : gr[j];
      const float xh = (xr[j] - m) * rs;
      dr[j] = rs * (g - mg - xh * mgx);
    }
  }
  if (!dw.defined() && !db.defined()) return;
  // Parameter grads: column sums over rows, parallel over columns (each thread owns its columns).
  float* pdw = dw.defined() ? f32(dw) : nullptr;
  float* pdb = db.defined() ? f32(db) : nullptr;
  constexpr std::int64_t kBlock = 64;
  const std::int64_t nblocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for if (rows * C > kParallelMin) schedule(static)
  for (std::int64_t cb = 0; cb < nblocks; ++cb) {
    const std::int64_t c0 = cb * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
    double aw[kBlock] = {}, ab[kBlock] = {};
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* xr = px + r * C;
      const float* gr = pdy + r * C;
      const float m = pm[r], rs = ps[r];
      for (std::int64_t j = c0; j < c1; ++j) {
        aw[j - c0] += static_cast<double>(gr[j]) * ((xr[j] - m) * rs);
        ab[j - c0] += gr[j];
      }
    }
    for (std::int64_t j = c0; j < c1; ++j) {
      if (pdw) pdw[j] += static_cast<float>(aw[j - c0]);
      if (pdb) pdb[j] += static_cast<float>(ab[j - c0]);
    }
  }
}

}  // namespace sk
