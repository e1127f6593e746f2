// adamw.cpp — decoupled AdamW over flat f32 buffers (backend.h states the update).
#include <cmath>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

void CpuBackend::do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1, float beta2,
                          float eps, float weight_decay, std::int64_t step) {
  const std::int64_t n = param.numel();
  float* pp = f32(param);
  const float* pg = f32(grad);
  float* pm = f32(m);
  float* pv = f32(v);
  const auto t = static_cast<double>(step);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), t));
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = pg[i];
    const float mi = beta1 * pm[i] + (1.f - beta1) * g;
    const float vi = beta2 * pv[i] + (1.f - beta2) * g * g;
    pm[i] = mi;
    pv[i] = vi;
    const float mhat = mi / bc1, vhat = vi / bc2;
    pp[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * pp[i]);
  }
}

}  // namespace sk
