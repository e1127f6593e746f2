// dropout.cpp — inverted dropout from the Philox stream: element i is kept iff
// philox_uniform_at(key, i) >= p (stream element key.offset + i), and kept values are multiplied by the f32 scale 1.0f / (1.0f - p).
// The CUDA kernel uses the same formula, so the two backends agree bit for bit. Backward is the same
// op applied to dy (backend.cpp).
#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

void CpuBackend::do_dropout(Tensor& y, const Tensor& x, float p, RngKey key) {
  const std::int64_t n = x.numel();
  const auto first = static_cast<std::int64_t>(philox_first_block(key));
  const auto end = static_cast<std::int64_t>(philox_end_block(key, static_cast<std::uint64_t>(n)));
  const auto off = static_cast<std::int64_t>(key.offset);
  const float scale = 1.0f / (1.0f - p);
  const float* px = f32(x);
  float* py = f32(y);
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t b = first; b < end; ++b) {
    const Philox4 r = philox_block(key, static_cast<std::uint64_t>(b));
    for (std::int64_t j = 0; j < 4; ++j) {
      const std::int64_t i = 4 * b + j - off;  // draw element of stream element 4b + j
      if (i >= 0 && i < n) py[i] = philox_uniform(r.v[j]) >= p ? px[i] * scale : 0.f;
    }
  }
}

}  // namespace sk
