// shape.cpp — copies that move elements without arithmetic: permute (rank <= 6), narrow copies
// (narrow, narrow_assign, concat, split, pad all land here), roll. Work on any dtype by element size.
#include <cstring>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

namespace {

template <class T>
void permute_typed(T* y, const T* x, const Shape& xs, const std::vector<int>& perm) {
  const int r = static_cast<int>(xs.size());
  std::int64_t xstride[6] = {}, ys[6] = {}, st[6] = {};
  std::int64_t acc = 1;
  for (int i = r - 1; i >= 0; --i) {
    xstride[i] = acc;
    acc *= xs[static_cast<std::size_t>(i)];
  }
  for (int i = 0; i < r; ++i) {
    ys[i] = xs[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])];
    st[i] = xstride[perm[static_cast<std::size_t>(i)]];  // input stride of output dim i
  }
  const std::int64_t cols = ys[r - 1], inc = st[r - 1];
  const std::int64_t rows = cols ? acc / cols : 0;
#pragma omp parallel for if (acc > kParallelMin) schedule(static)
  for (std::int64_t row = 0; row < rows; ++row) {
    std::int64_t off = 0, q = row;
    for (int i = r - 2; i >= 0; --i) {
      off += (q % ys[i]) * st[i];
      q /= ys[i];
    }
    T* yr = y + row * cols;
    const T* xr = x + off;
    if (inc == 1) {
      std::memcpy(yr, xr, static_cast<std::size_t>(cols) * sizeof(T));
    } else {
      for (std::int64_t j = 0; j < cols; ++j) yr[j] = xr[j * inc];
    }
  }
}

}  // namespace

void CpuBackend::do_permute(Tensor& y, const Tensor& x, const std::vector<int>& perm) {
  if (x.ndim() == 0) {
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    return;
  }
  switch (dtype_size(x.dtype())) {
    case 1: permute_typed(static_cast<std::uint8_t*>(y.raw()), static_cast<const std::uint8_t*>(x.raw()), x.shape(), perm); break;
    case 2: permute_typed(static_cast<std::uint16_t*>(y.raw()), static_cast<const std::uint16_t*>(x.raw()), x.shape(), perm); break;
    case 4: permute_typed(static_cast<std::uint32_t*>(y.raw()), static_cast<const std::uint32_t*>(x.raw()), x.shape(), perm); break;
    case 8: permute_typed(static_cast<std::uint64_t*>(y.raw()), static_cast<const std::uint64_t*>(x.raw()), x.shape(), perm); break;
    default: SK_ASSERT(false, "permute: element size ", dtype_size(x.dtype()));
  }
}

// The larger tensor's middle axis has `nx` entries, the slice's has `ny` (see backend.cpp callers):
//   extract:  y[o, j, i]          = x[o, start + j, i]   x: [outer, nx, inner], y: [outer, ny, inner]
//   insert:   y[o, start + j, i] (+)= x[o, j, i]          y: [outer, nx, inner], x: [outer, ny, inner]
void CpuBackend::do_narrow_copy(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t nx, std::int64_t ny,
                                std::int64_t inner, std::int64_t start, bool extract, bool accumulate) {
  const std::size_t es = dtype_size(x.dtype());
  const std::int64_t chunk = ny * inner;  // contiguous elements per outer index in the slice
  auto* py = static_cast<char*>(y.raw());
  const auto* px = static_cast<const char*>(x.raw());
  if (accumulate) {
    SK_ASSERT(!extract && x.dtype() == DType::f32, "narrow_copy: accumulate is for f32 inserts");
    float* fy = f32(y);
    const float* fx = f32(x);
#pragma omp parallel for if (outer * chunk > kParallelMin) schedule(static)
    for (std::int64_t o = 0; o < outer; ++o) {
      float* d = fy + (o * nx + start) * inner;
      const float* s = fx + o * chunk;
      for (std::int64_t k = 0; k < chunk; ++k) d[k] += s[k];
    }
    return;
  }
#pragma omp parallel for if (outer * chunk > kParallelMin) schedule(static)
  for (std::int64_t o = 0; o < outer; ++o) {
    const std::int64_t big = (o * nx + start) * inner, small = o * chunk;
    if (extract) std::memcpy(py + small * static_cast<std::int64_t>(es), px + big * static_cast<std::int64_t>(es), static_cast<std::size_t>(chunk) * es);
    else std::memcpy(py + big * static_cast<std::int64_t>(es), px + small * static_cast<std::int64_t>(es), static_cast<std::size_t>(chunk) * es);
  }
}

// out[o, j, i] = x[o, (j - shift) mod n, i], shift already in [0, n).
void CpuBackend::do_roll(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                         std::int64_t shift) {
  const std::size_t es = dtype_size(x.dtype());
  auto* py = static_cast<char*>(y.raw());
  const auto* px = static_cast<const char*>(x.raw());
  const std::size_t row = static_cast<std::size_t>(inner) * es;
  const std::size_t head = static_cast<std::size_t>(shift) * row;           // y[0:shift] = x[n-shift:n]
  const std::size_t tail = static_cast<std::size_t>(n - shift) * row;       // y[shift:n] = x[0:n-shift]
#pragma omp parallel for if (outer * n * inner > kParallelMin) schedule(static)
  for (std::int64_t o = 0; o < outer; ++o) {
    char* d = py + static_cast<std::size_t>(o * n) * row;
    const char* s = px + static_cast<std::size_t>(o * n) * row;
    if (head) std::memcpy(d, s + tail, head);
    if (tail) std::memcpy(d + head, s, tail);
  }
}

}  // namespace sk
