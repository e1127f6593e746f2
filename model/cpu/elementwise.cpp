// elementwise.cpp — broadcasting binary ops and unary ops, forward and backward.
#include <cmath>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

namespace {

// Walks an output of rank r as rows of its last dim; each input has per-dim strides (0 where the
// input is broadcast). Inputs' shapes are already padded to the output rank by backend.cpp.
struct Bcast {
  int rank = 0;
  std::int64_t cols = 1, rows = 1;
  std::int64_t out[8] = {};
  std::int64_t sa[8] = {}, sb[8] = {};

  Bcast(const Shape& y, const Shape& as, const Shape& bs) {
    rank = static_cast<int>(y.size());
    SK_ASSERT(rank <= 8, "broadcast of rank ", rank, " (max 8)");
    std::int64_t ta = 1, tb = 1;
    for (int i = rank - 1; i >= 0; --i) {
      const auto u = static_cast<std::size_t>(i);
      out[i] = y[u];
      sa[i] = as[u] == 1 ? 0 : ta;
      sb[i] = bs[u] == 1 ? 0 : tb;
      ta *= as[u];
      tb *= bs[u];
    }
    if (rank) cols = out[rank - 1];
    rows = cols ? shape_numel(y) / cols : 0;
  }
  // Offsets of row r's first element in a and b.
  void row(std::int64_t r, std::int64_t& oa, std::int64_t& ob) const {
    oa = 0;
    ob = 0;
    for (int i = rank - 2; i >= 0; --i) {
      std::int64_t k = r % out[i];
      r /= out[i];
      oa += k * sa[i];
      ob += k * sb[i];
    }
  }
  std::int64_t ia() const { return rank ? sa[rank - 1] : 0; }
  std::int64_t ib() const { return rank ? sb[rank - 1] : 0; }
};

inline float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::max: return a >= b ? a : b;
    case BinaryOp::min: return a <= b ? a : b;
  }
  return 0.f;
}

template <BinaryOp OP>
void binary_rows(float* y, const float* a, const float* b, const Bcast& bc) {
  const std::int64_t cols = bc.cols, ia = bc.ia(), ib = bc.ib();
#pragma omp parallel for if (bc.rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < bc.rows; ++r) {
    std::int64_t oa, ob;
    bc.row(r, oa, ob);
    float* yr = y + r * cols;
    const float* ar = a + oa;
    const float* br = b + ob;
    if (ia == 1 && ib == 1) {
      for (std::int64_t j = 0; j < cols; ++j) yr[j] = apply(OP, ar[j], br[j]);
    } else {
      for (std::int64_t j = 0; j < cols; ++j) yr[j] = apply(OP, ar[j * ia], br[j * ib]);
    }
  }
}

inline float gelu(float x) { return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f)); }
inline float gelu_grad(float x) {
  const float cdf = 0.5f * (1.f + std::erf(x * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * std::exp(-0.5f * x * x);
  return cdf + x * pdf;
}

}  // namespace

void CpuBackend::do_binary(Tensor& y, const Tensor& a, const Shape& as, const Tensor& b, const Shape& bs,
                           BinaryOp op) {
  Bcast bc(y.shape(), as, bs);
  float* py = f32(y);
  const float* pa = f32(a);
  const float* pb = f32(b);
  switch (op) {
    case BinaryOp::add: binary_rows<BinaryOp::add>(py, pa, pb, bc); break;
    case BinaryOp::sub: binary_rows<BinaryOp::sub>(py, pa, pb, bc); break;
    case BinaryOp::mul: binary_rows<BinaryOp::mul>(py, pa, pb, bc); break;
    case BinaryOp::div: binary_rows<BinaryOp::div>(py, pa, pb, bc); break;
    case BinaryOp::max: binary_rows<BinaryOp::max>(py, pa, pb, bc); break;
    case BinaryOp::min: binary_rows<BinaryOp::min>(py, pa, pb, bc); break;
  }
}

void CpuBackend::do_binary_backward(Tensor& da_full, Tensor& db_full, const Tensor& dy, const Tensor& a,
                                    const Shape& as, const Tensor& b, const Shape& bs, BinaryOp op) {
  Bcast bc(dy.shape(), as, bs);
  float* pda = f32(da_full);
  float* pdb = f32(db_full);
  const float* pdy = f32(dy);
  const float* pa = f32(a);
  const float* pb = f32(b);
  const std::int64_t cols = bc.cols, ia = bc.ia(), ib = bc.ib();
#pragma omp parallel for if (bc.rows * cols > kParallelMin) schedule(static)
  for (std::int64_t r = 0; r < bc.rows; ++r) {
    std::int64_t oa, ob;
    bc.row(r, oa, ob);
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::int64_t k = r * cols + j;
      const float g = pdy[k], av = pa[oa + j * ia], bv = pb[ob + j * ib];
      float ga = 0.f, gb = 0.f;
      switch (op) {
        case BinaryOp::add: ga = g; gb = g; break;
        case BinaryOp::sub: ga = g; gb = -g; break;
        case BinaryOp::mul: ga = g * bv; gb = g * av; break;
        case BinaryOp::div: ga = g / bv; gb = -g * av / (bv * bv); break;
        case BinaryOp::max: (av >= bv ? ga : gb) = g; break;
        case BinaryOp::min: (av <= bv ? ga : gb) = g; break;
      }
      pda[k] = ga;
      pdb[k] = gb;
    }
  }
}

void CpuBackend::do_unary(Tensor& y, const Tensor& x, UnaryOp op, float alpha) {
  float* py = f32(y);
  const float* px = f32(x);
  const std::int64_t n = x.numel();
#define SK_UNARY_LOOP(expr)                                               \
  _Pragma("omp parallel for if (n > kParallelMin) schedule(static)")      \
  for (std::int64_t i = 0; i < n; ++i) {                                  \
    const float v = px[i];                                                \
    py[i] = (expr);                                                       \
  }                                                                       \
  break;
  switch (op) {
    case UnaryOp::neg: SK_UNARY_LOOP(-v)
    case UnaryOp::exp: SK_UNARY_LOOP(std::exp(v))
    case UnaryOp::log: SK_UNARY_LOOP(std::log(v))
    case UnaryOp::sqrt: SK_UNARY_LOOP(std::sqrt(v))
    case UnaryOp::rsqrt: SK_UNARY_LOOP(1.f / std::sqrt(v))
    case UnaryOp::square: SK_UNARY_LOOP(v * v)
    case UnaryOp::abs: SK_UNARY_LOOP(std::fabs(v))
    case UnaryOp::relu: SK_UNARY_LOOP(v > 0.f ? v : 0.f)
    case UnaryOp::leaky_relu: SK_UNARY_LOOP(v > 0.f ? v : alpha * v)
    case UnaryOp::gelu: SK_UNARY_LOOP(gelu(v))
    case UnaryOp::scale: SK_UNARY_LOOP(alpha * v)
    case UnaryOp::add_scalar: SK_UNARY_LOOP(v + alpha)
    case UnaryOp::pow_scalar: SK_UNARY_LOOP(std::pow(v, alpha))
    case UnaryOp::sigmoid: SK_UNARY_LOOP(1.f / (1.f + std::exp(-v)))
    case UnaryOp::tanh: SK_UNARY_LOOP(std::tanh(v))
  }
#undef SK_UNARY_LOOP
}

void CpuBackend::do_unary_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, UnaryOp op,
                                   float alpha) {
  float* pdx = f32(dx);
  const float* pdy = f32(dy);
  const float* px = f32(x);
  const float* py = y.defined() ? f32(y) : nullptr;  // given for exp, sqrt, rsqrt, sigmoid, tanh
  const std::int64_t n = x.numel();
#define SK_UNARY_BWD(expr)                                                \
  _Pragma("omp parallel for if (n > kParallelMin) schedule(static)")      \
  for (std::int64_t i = 0; i < n; ++i) {                                  \
    const float g = pdy[i], v = px[i];                                    \
    (void)v;                                                              \
    pdx[i] = (expr);                                                      \
  }                                                                       \
  break;
  switch (op) {
    case UnaryOp::neg: SK_UNARY_BWD(-g)
    case UnaryOp::exp: SK_UNARY_BWD(g * py[i])
    case UnaryOp::log: SK_UNARY_BWD(g / v)
    case UnaryOp::sqrt: SK_UNARY_BWD(g * 0.5f / py[i])
    case UnaryOp::rsqrt: SK_UNARY_BWD(g * -0.5f * py[i] * py[i] * py[i])
    case UnaryOp::square: SK_UNARY_BWD(2.f * v * g)
    case UnaryOp::abs: SK_UNARY_BWD(v > 0.f ? g : (v < 0.f ? -g : 0.f))
    case UnaryOp::relu: SK_UNARY_BWD(v > 0.f ? g : 0.f)
    case UnaryOp::leaky_relu: SK_UNARY_BWD(v > 0.f ? g : alpha * g)
    case UnaryOp::gelu: SK_UNARY_BWD(g * gelu_grad(v))
    case UnaryOp::scale: SK_UNARY_BWD(alpha * g)
    case UnaryOp::add_scalar: SK_UNARY_BWD(g)
    case UnaryOp::pow_scalar: SK_UNARY_BWD(g * alpha * std::pow(v, alpha - 1.f))
    case UnaryOp::sigmoid: SK_UNARY_BWD(g * py[i] * (1.f - py[i]))
    case UnaryOp::tanh: SK_UNARY_BWD(g * (1.f - py[i] * py[i]))
  }
#undef SK_UNARY_BWD
}

}  // namespace sk
