// xent.cpp — cross-entropy with ignore_index over logits [R, V] and i64 targets [R], and backward.
//   lse_r = logsumexp(logits_r); loss = mean over counted rows of (lse_r - logits_r[t_r]).
//   dlogits_r = scale * (softmax(logits_r) - onehot(t_r)) on counted rows, 0 on ignored rows,
//   scale = dloss / count (computed by backend.cpp).
#include <cmath>
#include <limits>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

void CpuBackend::do_cross_entropy(Tensor& loss, Tensor& lse, std::int64_t& count, const Tensor& logits,
                                  const Tensor& targets, std::int64_t ignore_index) {
  const std::int64_t R = logits.dim(0), V = logits.dim(1);
  const float* px = f32(logits);
  const std::int64_t* pt = i64(targets);
  float* pl = f32(lse);
  for (std::int64_t r = 0; r < R; ++r) {
    const std::int64_t t = pt[r];
    SK_CHECK(t == ignore_index || (t >= 0 && t < V), "cross_entropy: target ", t, " at row ", r,
             " is outside the vocabulary [0, ", V, ") and is not ignore_index ", ignore_index);
  }
  double total = 0.0;
  std::int64_t n = 0;
#pragma omp parallel for if (R * V > kParallelMin) schedule(static) reduction(+ : total, n)
  for (std::int64_t r = 0; r < R; ++r) {
    const float* xr = px + r * V;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < V; ++j) mx = std::fmax(mx, xr[j]);
    double s = 0.0;
    for (std::int64_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(xr[j]) - mx);
    const double l = mx + std::log(s);
    pl[r] = static_cast<float>(l);
    if (pt[r] != ignore_index) {
      total += l - xr[pt[r]];
      n += 1;
    }
  }
  count = n;
  f32(loss)[0] = n ? static_cast<float>(total / static_cast<double>(n)) : 0.f;
}

void CpuBackend::do_cross_entropy_backward(Tensor& dlogits, float scale, const Tensor& logits, const Tensor& targets,
                                           const Tensor& lse, std::int64_t ignore_index) {
  const std::int64_t R = logits.dim(0), V = logits.dim(1);
  const float* px = f32(logits);
  const std::int64_t* pt = i64(targets);
  const float* pl = f32(lse);
  float* pd = f32(dlogits);
  for (std::int64_t r = 0; r < R; ++r)
    SK_CHECK(pt[r] == ignore_index || (pt[r] >= 0 && pt[r] < V), "cross_entropy_backward: target ", pt[r],
             " at row ", r, " is outside the vocabulary [0, ", V, ") and is not ignore_index ", ignore_index);
#pragma omp parallel for if (R * V > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < R; ++r) {
    float* dr = pd + r * V;
    const std::int64_t t = pt[r];
    if (t == ignore_index) {
      for (std::int64_t j = 0; j < V; ++j) dr[j] = 0.f;
      continue;
    }
    const float* xr = px + r * V;
    for (std::int64_t j = 0; j < V; ++j) dr[j] = scale * std::exp(xr[j] - pl[r]);
    dr[t] -= scale;
  }
}

}  // namespace sk
