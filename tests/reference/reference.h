// reference.h — naive float64 implementations of every Backend op, written independently of both
// backends (no sk::Backend, no sk::Tensor): plain loops over std::vector<double> with row-major
// shapes. They are slow on purpose; clarity is the point. The ops test suite (tests/ops) compares
// each backend against these on odd shapes, and checks backward twice: against the analytic
// formulas here and against central finite differences of the backend's own forward
// (finite_diff.h).
//
// Only the RNG (model/core/philox.h) is shared with the backends: it is the specification of the
// random streams, and is itself pinned by Random123's known-answer vectors in the tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "model/core/philox.h"

namespace skref {

using Shape = std::vector<std::int64_t>;
using Vec = std::vector<double>;

inline std::int64_t numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

inline std::size_t uz(std::int64_t i) { return static_cast<std::size_t>(i); }

// Row-major strides of a shape.
inline Shape strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[uz(i)] = st[uz(i + 1)] * s[uz(i + 1)];
  return st;
}

// Multi-index of flat position `flat` in shape s.
inline Shape unravel(std::int64_t flat, const Shape& s) {
  Shape idx(s.size(), 0);
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    idx[uz(i)] = flat % s[uz(i)];
    flat /= s[uz(i)];
  }
  return idx;
}

inline std::int64_t ravel(const Shape& idx, const Shape& s) {
  std::int64_t f = 0;
  for (std::size_t i = 0; i < s.size(); ++i) f = f * s[i] + idx[i];
  return f;
}

struct Split3 {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline Split3 split3(const Shape& s, int axis) {
  Split3 r;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    if (i < axis) r.outer *= s[uz(i)];
    else if (i == axis) r.n = s[uz(i)];
    else r.inner *= s[uz(i)];
  }
  return r;
}

// ---- bf16 --------------------------------------------------------------------------------------
// Nearest bf16 value of x (8 significant bits, f32's exponent range), ties to even; overflow to inf.
// Written from the definition (scale by the ulp, round, scale back), not from bit tricks.
inline double bf16_round(double x) {
  if (std::isnan(x) || std::isinf(x) || x == 0.0) return x;
  int e;
  std::frexp(std::fabs(x), &e);            // |x| = m * 2^e, m in [0.5, 1)  ->  2^(e-1) <= |x| < 2^e
  int exp2 = std::max(e - 1, -126);        // unbiased exponent, subnormals share -126
  double ulp = std::ldexp(1.0, exp2 - 7);  // 7 stored mantissa bits
  double q = std::fabs(x) / ulp;
  double fl = std::floor(q);
  double frac = q - fl;
  double r;
  if (frac > 0.5) r = fl + 1;
  else if (frac < 0.5) r = fl;
  else r = (std::fmod(fl, 2.0) == 0.0) ? fl : fl + 1;
  double v = std::copysign(r * ulp, x);  // a value rounded to zero keeps its sign
  const double max_bf16 = std::ldexp(255.0, 120);  // (2 - 2^-7) * 2^127
  if (std::fabs(v) > max_bf16) return std::copysign(std::numeric_limits<double>::infinity(), x);
  return v;
}

// ---- elementwise -------------------------------------------------------------------------------
enum class Bin { add, sub, mul, div, max, min };  // same order as sk::BinaryOp
enum class Un {
  neg, exp, log, sqrt, rsqrt, square, abs, relu, leaky_relu, gelu, scale, add_scalar, pow_scalar, sigmoid, tanh
};  // same order as sk::UnaryOp

inline double bin(Bin op, double a, double b) {
  switch (op) {
    case Bin::add: return a + b;
    case Bin::sub: return a - b;
    case Bin::mul: return a * b;
    case Bin::div: return a / b;
    case Bin::max: return a >= b ? a : b;
    case Bin::min: return a <= b ? a : b;
  }
  return 0;
}
// (d/da, d/db); max/min send the gradient to a on ties (a >= b resp. a <= b).
inline void bin_grad(Bin op, double a, double b, double& ga, double& gb) {
  switch (op) {
    case Bin::add: ga = 1; gb = 1; return;
    case Bin::sub: ga = 1; gb = -1; return;
    case Bin::mul: ga = b; gb = a; return;
    case Bin::div: ga = 1 / b; gb = -a / (b * b); return;
    case Bin::max: ga = a >= b ? 1 : 0; gb = 1 - ga; return;
    case Bin::min: ga = a <= b ? 1 : 0; gb = 1 - ga; return;
  }
}

inline Shape broadcast_shape(const Shape& a, const Shape& b) {
  std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1) throw std::invalid_argument("shapes do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Flat index into an operand of shape s (right-aligned, size-1 dims stretched) for output index idx.
inline std::int64_t bcast_index(const Shape& idx, const Shape& s) {
  std::size_t off = idx.size() - s.size();
  std::int64_t f = 0;
  for (std::size_t i = 0; i < s.size(); ++i) f = f * s[i] + (s[i] == 1 ? 0 : idx[i + off]);
  return f;
}

inline Vec binary(Bin op, const Vec& a, const Shape& as, const Vec& b, const Shape& bs, Shape* out_shape = nullptr) {
  Shape os = broadcast_shape(as, bs);
  Vec y(uz(numel(os)));
  for (std::int64_t f = 0; f < numel(os); ++f) {
    Shape idx = unravel(f, os);
    y[uz(f)] = bin(op, a[uz(bcast_index(idx, as))], b[uz(bcast_index(idx, bs))]);
  }
  if (out_shape) *out_shape = os;
  return y;
}

// Gradients shaped like a and b (broadcast dims summed).
inline void binary_backward(Bin op, const Vec& dy, const Vec& a, const Shape& as, const Vec& b, const Shape& bs,
                            Vec& da, Vec& db) {
  Shape os = broadcast_shape(as, bs);
  da.assign(a.size(), 0.0);
  db.assign(b.size(), 0.0);
  for (std::int64_t f = 0; f < numel(os); ++f) {
    Shape idx = unravel(f, os);
    std::int64_t ia = bcast_index(idx, as), ib = bcast_index(idx, bs);
    double ga = 0, gb = 0;
    bin_grad(op, a[uz(ia)], b[uz(ib)], ga, gb);
    da[uz(ia)] += dy[uz(f)] * ga;
    db[uz(ib)] += dy[uz(f)] * gb;
  }
}

inline double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

inline double un(Un op, double x, double alpha) {
  switch (op) {
    case Un::neg: return -x;
    case Un::exp: return std::exp(x);
    case Un::log: return std::log(x);
    case Un::sqrt: return std::sqrt(x);
    case Un::rsqrt: return 1.0 / std::sqrt(x);
    case Un::square: return x * x;
    case Un::abs: return std::fabs(x);
    case Un::relu: return x > 0 ? x : 0.0;
    case Un::leaky_relu: return x > 0 ? x : alpha * x;
    case Un::gelu: return gelu(x);
    case Un::scale: return alpha * x;
    case Un::add_scalar: return x + alpha;
    case Un::pow_scalar: return std::pow(x, alpha);
    case Un::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Un::tanh: return std::tanh(x);
  }
  return 0;
}

// d op(x) / dx from the calculus (not via the forward value).
inline double un_grad(Un op, double x, double alpha) {
  const double pi = 3.14159265358979323846;
  switch (op) {
    case Un::neg: return -1.0;
    case Un::exp: return std::exp(x);
    case Un::log: return 1.0 / x;
    case Un::sqrt: return 0.5 / std::sqrt(x);
    case Un::rsqrt: return -0.5 * std::pow(x, -1.5);
    case Un::square: return 2.0 * x;
    case Un::abs: return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0);
    case Un::relu: return x > 0 ? 1.0 : 0.0;
    case Un::leaky_relu: return x > 0 ? 1.0 : alpha;
    case Un::gelu: return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * pi);
    case Un::scale: return alpha;
    case Un::add_scalar: return 1.0;
    case Un::pow_scalar: return alpha * std::pow(x, alpha - 1.0);
    case Un::sigmoid: {
      double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1.0 - s);
    }
    case Un::tanh: {
      double t = std::tanh(x);
      return 1.0 - t * t;
    }
  }
  return 0;
}

// ---- reductions over one axis ------------------------------------------------------------------
enum class Red { sum, mean, max };

inline Vec reduce(Red op, const Vec& x, const Shape& s, int axis) {
  Split3 p = split3(s, axis);
  Vec y(uz(p.outer * p.inner));
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t i = 0; i < p.inner; ++i) {
      double acc = op == Red::max ? -std::numeric_limits<double>::infinity() : 0.0;
      for (std::int64_t j = 0; j < p.n; ++j) {
        double v = x[uz((o * p.n + j) * p.inner + i)];
        acc = op == Red::max ? std::max(acc, v) : acc + v;
      }
      if (op == Red::mean) acc /= static_cast<double>(p.n);
      y[uz(o * p.inner + i)] = acc;
    }
  return y;
}

// max: the gradient goes to the first index holding the maximum.
inline Vec reduce_backward(Red op, const Vec& dy, const Vec& x, const Shape& s, int axis) {
  Split3 p = split3(s, axis);
  Vec dx(x.size(), 0.0);
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t i = 0; i < p.inner; ++i) {
      double g = dy[uz(o * p.inner + i)];
      if (op == Red::max) {
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < p.n; ++j)
          if (x[uz((o * p.n + j) * p.inner + i)] > x[uz((o * p.n + best) * p.inner + i)]) best = j;
        dx[uz((o * p.n + best) * p.inner + i)] = g;
      } else {
        for (std::int64_t j = 0; j < p.n; ++j)
          dx[uz((o * p.n + j) * p.inner + i)] = op == Red::mean ? g / static_cast<double>(p.n) : g;
      }
    }
  return dx;
}

inline Vec logsumexp(const Vec& x, const Shape& s, int axis) {
  Split3 p = split3(s, axis);
  Vec y(uz(p.outer * p.inner));
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t i = 0; i < p.inner; ++i) {
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < p.n; ++j) m = std::max(m, x[uz((o * p.n + j) * p.inner + i)]);
      double acc = 0;
      for (std::int64_t j = 0; j < p.n; ++j) acc += std::exp(x[uz((o * p.n + j) * p.inner + i)] - m);
      y[uz(o * p.inner + i)] = m + std::log(acc);
    }
  return y;
}

// d lse / dx_j = softmax_j (recomputed here from x, not from the forward output).
inline Vec logsumexp_backward(const Vec& dy, const Vec& x, const Shape& s, int axis) {
  Split3 p = split3(s, axis);
  Vec l = logsumexp(x, s, axis);
  Vec dx(x.size());
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t i = 0; i < p.inner; ++i)
      for (std::int64_t j = 0; j < p.n; ++j) {
        std::size_t k = uz((o * p.n + j) * p.inner + i);
        dx[k] = dy[uz(o * p.inner + i)] * std::exp(x[k] - l[uz(o * p.inner + i)]);
      }
  return dx;
}

inline Vec cumsum(const Vec& x, const Shape& s, int axis, bool reverse) {
  Split3 p = split3(s, axis);
  Vec y(x.size());
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t i = 0; i < p.inner; ++i)
      for (std::int64_t j = 0; j < p.n; ++j) {
        double acc = 0;
        // inclusive prefix (or suffix) sum, written as an explicit sum over the range
        std::int64_t lo = reverse ? j : 0, hi = reverse ? p.n - 1 : j;
        for (std::int64_t k = lo; k <= hi; ++k) acc += x[uz((o * p.n + k) * p.inner + i)];
        y[uz((o * p.n + j) * p.inner + i)] = acc;
      }
  return y;
}

// ---- softmax family (rows x cols) ---------------------------------------------------------------
// mask: empty = no mask; else 1 keep, 0 masked (score replaced by `fill` before the softmax).
inline Vec softmax(const Vec& x, std::int64_t rows, std::int64_t cols, const std::vector<std::uint8_t>& mask,
                   double scale, double fill) {
  Vec y(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    Vec s(uz(cols));
    for (std::int64_t j = 0; j < cols; ++j) {
      std::size_t k = uz(r * cols + j);
      s[uz(j)] = (!mask.empty() && !mask[k]) ? fill : scale * x[k];
    }
    double m = *std::max_element(s.begin(), s.end());
    double z = 0;
    for (double v : s) z += std::exp(v - m);
    for (std::int64_t j = 0; j < cols; ++j) y[uz(r * cols + j)] = std::exp(s[uz(j)] - m) / z;
  }
  return y;
}

// Full Jacobian-vector form: dx_i = scale * sum_j dy_j * y_j (delta_ij - y_i), 0 where masked.
inline Vec softmax_backward(const Vec& dy, const Vec& y, std::int64_t rows, std::int64_t cols,
                            const std::vector<std::uint8_t>& mask, double scale) {
  Vec dx(y.size(), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t i = 0; i < cols; ++i) {
      std::size_t ki = uz(r * cols + i);
      if (!mask.empty() && !mask[ki]) continue;
      double acc = 0;
      for (std::int64_t j = 0; j < cols; ++j) {
        std::size_t kj = uz(r * cols + j);
        acc += dy[kj] * y[kj] * ((i == j ? 1.0 : 0.0) - y[ki]);
      }
      dx[ki] = scale * acc;
    }
  return dx;
}

inline Vec log_softmax(const Vec& x, std::int64_t rows, std::int64_t cols) {
  Vec l = logsumexp(x, {rows, cols}, 1);
  Vec y(x.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j) y[uz(r * cols + j)] = x[uz(r * cols + j)] - l[uz(r)];
  return y;
}

// dx_i = dy_i - softmax_i * sum_j dy_j, with softmax from x.
inline Vec log_softmax_backward(const Vec& dy, const Vec& x, std::int64_t rows, std::int64_t cols) {
  Vec p = softmax(x, rows, cols, {}, 1.0, 0.0);
  Vec dx(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (std::int64_t j = 0; j < cols; ++j) s += dy[uz(r * cols + j)];
    for (std::int64_t j = 0; j < cols; ++j) dx[uz(r * cols + j)] = dy[uz(r * cols + j)] - p[uz(r * cols + j)] * s;
  }
  return dx;
}

struct XentRef {
  double loss = 0;
  Vec lse;
  std::int64_t count = 0;
};
inline XentRef cross_entropy(const Vec& logits, std::int64_t R, std::int64_t V, const std::vector<std::int64_t>& t,
                             std::int64_t ignore) {
  XentRef o;
  o.lse = logsumexp(logits, {R, V}, 1);
  double total = 0;
  for (std::int64_t r = 0; r < R; ++r) {
    if (t[uz(r)] == ignore) continue;
    total += -std::log(std::exp(logits[uz(r * V + t[uz(r)])] - o.lse[uz(r)]));
    o.count++;
  }
  o.loss = o.count ? total / static_cast<double>(o.count) : 0.0;
  return o;
}
inline Vec cross_entropy_backward(double dloss, const Vec& logits, std::int64_t R, std::int64_t V,
                                  const std::vector<std::int64_t>& t, std::int64_t ignore) {
  XentRef f = cross_entropy(logits, R, V, t, ignore);
  Vec p = softmax(logits, R, V, {}, 1.0, 0.0);
  Vec d(logits.size(), 0.0);
  if (!f.count) return d;
  for (std::int64_t r = 0; r < R; ++r) {
    if (t[uz(r)] == ignore) continue;
    for (std::int64_t j = 0; j < V; ++j)
      d[uz(r * V + j)] = dloss / static_cast<double>(f.count) * (p[uz(r * V + j)] - (j == t[uz(r)] ? 1.0 : 0.0));
  }
  return d;
}

// ---- layernorm -----------------------------------------------------------------------------------
struct LnRef {
  Vec y, mean, rstd;
};
// w, b empty = no affine.
inline LnRef layernorm(const Vec& x, std::int64_t rows, std::int64_t C, const Vec& w, const Vec& b, double eps) {
  LnRef o;
  o.y.resize(x.size());
  o.mean.resize(uz(rows));
  o.rstd.resize(uz(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (std::int64_t j = 0; j < C; ++j) mu += x[uz(r * C + j)];
    mu /= static_cast<double>(C);
    for (std::int64_t j = 0; j < C; ++j) var += (x[uz(r * C + j)] - mu) * (x[uz(r * C + j)] - mu);
    var /= static_cast<double>(C);
    double rs = 1.0 / std::sqrt(var + eps);
    o.mean[uz(r)] = mu;
    o.rstd[uz(r)] = rs;
    for (std::int64_t j = 0; j < C; ++j) {
      double v = (x[uz(r * C + j)] - mu) * rs;
      if (!w.empty()) v *= w[uz(j)];
      if (!b.empty()) v += b[uz(j)];
      o.y[uz(r * C + j)] = v;
    }
  }
  return o;
}
// dx via the explicit Jacobian of xhat w.r.t. x: d xhat_j / d x_i = rs (delta_ij - 1/C - xhat_i xhat_j / C).
inline void layernorm_backward(const Vec& dy, const Vec& x, std::int64_t rows, std::int64_t C, const Vec& w,
                               double eps, Vec& dx, Vec& dw, Vec& db) {
  LnRef f = layernorm(x, rows, C, {}, {}, eps);  // f.y = xhat
  dx.assign(x.size(), 0.0);
  dw.assign(uz(C), 0.0);
  db.assign(uz(C), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    double rs = f.rstd[uz(r)];
    for (std::int64_t i = 0; i < C; ++i) {
      double acc = 0;
      for (std::int64_t j = 0; j < C; ++j) {
        double g = dy[uz(r * C + j)] * (w.empty() ? 1.0 : w[uz(j)]);
        double jac = rs * ((i == j ? 1.0 : 0.0) - 1.0 / static_cast<double>(C) -
                           f.y[uz(r * C + i)] * f.y[uz(r * C + j)] / static_cast<double>(C));
        acc += g * jac;
      }
      dx[uz(r * C + i)] = acc;
      dw[uz(i)] += dy[uz(r * C + i)] * f.y[uz(r * C + i)];
      db[uz(i)] += dy[uz(r * C + i)];
    }
  }
}

// ---- embedding / rows ------------------------------------------------------------------------------
inline Vec embedding(const Vec& table, std::int64_t E, const std::vector<std::int64_t>& ids) {
  Vec y;
  for (auto id : ids)
    for (std::int64_t j = 0; j < E; ++j) y.push_back(table[uz(id * E + j)]);
  return y;
}
inline Vec embedding_backward(std::int64_t V, std::int64_t E, const Vec& dy, const std::vector<std::int64_t>& ids) {
  Vec d(uz(V * E), 0.0);
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::int64_t j = 0; j < E; ++j) d[uz(ids[i] * E + j)] += dy[i * uz(E) + uz(j)];
  return d;
}

template <class T>
std::vector<T> gather_rows(const std::vector<T>& x, std::int64_t N, std::int64_t R, std::int64_t C,
                           const std::vector<std::int64_t>& idx, std::int64_t K) {
  std::vector<T> y(uz(N * K * C));
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t c = 0; c < C; ++c) y[uz((n * K + k) * C + c)] = x[uz((n * R + idx[uz(n * K + k)]) * C + c)];
  return y;
}
inline Vec scatter_add_rows(Vec dx, std::int64_t N, std::int64_t R, std::int64_t C, const Vec& dy,
                            const std::vector<std::int64_t>& idx, std::int64_t K) {
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t c = 0; c < C; ++c) dx[uz((n * R + idx[uz(n * K + k)]) * C + c)] += dy[uz((n * K + k) * C + c)];
  (void)R;
  return dx;
}

// ---- shape ops (any element type) ---------------------------------------------------------------------
template <class T>
std::vector<T> permute(const std::vector<T>& x, const Shape& s, const std::vector<int>& perm, Shape* out_shape = nullptr) {
  Shape os(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) os[i] = s[uz(perm[i])];
  std::vector<T> y(x.size());
  for (std::int64_t f = 0; f < numel(s); ++f) {
    Shape in = unravel(f, s), out(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) out[i] = in[uz(perm[i])];
    y[uz(ravel(out, os))] = x[uz(f)];
  }
  if (out_shape) *out_shape = os;
  return y;
}

template <class T>
std::vector<T> narrow(const std::vector<T>& x, const Shape& s, int axis, std::int64_t start, std::int64_t len) {
  Shape os = s;
  os[uz(axis)] = len;
  std::vector<T> y(uz(numel(os)));
  for (std::int64_t f = 0; f < numel(os); ++f) {
    Shape idx = unravel(f, os);
    idx[uz(axis)] += start;
    y[uz(f)] = x[uz(ravel(idx, s))];
  }
  return y;
}

template <class T>
void narrow_assign(std::vector<T>& dst, const Shape& ds, const std::vector<T>& src, const Shape& ss, int axis,
                   std::int64_t start, bool accumulate) {
  for (std::int64_t f = 0; f < numel(ss); ++f) {
    Shape idx = unravel(f, ss);
    idx[uz(axis)] += start;
    T& d = dst[uz(ravel(idx, ds))];
    d = accumulate ? static_cast<T>(d + src[uz(f)]) : src[uz(f)];
  }
}

template <class T>
std::vector<T> concat(const std::vector<std::vector<T>>& xs, const std::vector<Shape>& ss, int axis, Shape* out_shape = nullptr) {
  Shape os = ss[0];
  os[uz(axis)] = 0;
  for (const auto& s : ss) os[uz(axis)] += s[uz(axis)];
  std::vector<T> y(uz(numel(os)));
  std::int64_t off = 0;
  for (std::size_t t = 0; t < xs.size(); ++t) {
    narrow_assign(y, os, xs[t], ss[t], axis, off, false);
    off += ss[t][uz(axis)];
  }
  if (out_shape) *out_shape = os;
  return y;
}

// torch.roll: out[i] = x[(i - shift) mod n] along axis.
template <class T>
std::vector<T> roll(const std::vector<T>& x, const Shape& s, int axis, std::int64_t shift) {
  std::vector<T> y(x.size());
  std::int64_t n = s[uz(axis)];
  for (std::int64_t f = 0; f < numel(s); ++f) {
    Shape idx = unravel(f, s);
    std::int64_t src = ((idx[uz(axis)] - shift) % n + n) % n;
    Shape sidx = idx;
    sidx[uz(axis)] = src;
    y[uz(f)] = x[uz(ravel(sidx, s))];
  }
  return y;
}

template <class T>
std::vector<T> pad(const std::vector<T>& x, const Shape& s, int axis, std::int64_t before, std::int64_t after, T value) {
  Shape os = s;
  os[uz(axis)] += before + after;
  std::vector<T> y(uz(numel(os)), value);
  narrow_assign(y, os, x, s, axis, before, false);
  return y;
}

// ---- topk / argmax (rows x cols) ---------------------------------------------------------------------
// Selection by repeated scan: the k-th pick is the largest value not yet picked, lowest index on ties.
inline void topk(const Vec& x, std::int64_t rows, std::int64_t cols, std::int64_t k, Vec& values,
                 std::vector<std::int64_t>& idx) {
  values.assign(uz(rows * k), 0.0);
  idx.assign(uz(rows * k), 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<bool> used(uz(cols), false);
    for (std::int64_t t = 0; t < k; ++t) {
      std::int64_t best = -1;
      for (std::int64_t j = 0; j < cols; ++j)
        if (!used[uz(j)] && (best < 0 || x[uz(r * cols + j)] > x[uz(r * cols + best)])) best = j;
      used[uz(best)] = true;
      values[uz(r * k + t)] = x[uz(r * cols + best)];
      idx[uz(r * k + t)] = best;
    }
  }
}
inline std::vector<std::int64_t> argmax(const Vec& x, std::int64_t rows, std::int64_t cols) {
  std::vector<std::int64_t> out(uz(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t best = 0;
    for (std::int64_t j = 0; j < cols; ++j)
      if (x[uz(r * cols + j)] > x[uz(r * cols + best)]) best = j;
    out[uz(r)] = best;
  }
  return out;
}

// ---- GEMM ---------------------------------------------------------------------------------------------
// C_b = alpha * op(A_b) op(B_b) + beta * C_b for b < batch. A_b is [M,K] ([K,M] when ta), B_b is
// [K,N] ([N,K] when tb), shared across the batch when shared_b.
inline Vec gemm(const Vec& A, const Vec& B, const Vec& C0, bool ta, bool tb, std::int64_t batch, std::int64_t M,
                std::int64_t N, std::int64_t K, bool shared_b, double alpha, double beta) {
  Vec C(uz(batch * M * N), 0.0);
  for (std::int64_t bi = 0; bi < batch; ++bi) {
    const double* a = A.data() + bi * M * K;
    const double* b = B.data() + (shared_b ? 0 : bi * K * N);
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (std::int64_t k = 0; k < K; ++k) {
          double av = ta ? a[k * M + i] : a[i * K + k];
          double bv = tb ? b[j * K + k] : b[k * N + j];
          acc += av * bv;
        }
        std::size_t c = uz((bi * M + i) * N + j);
        C[c] = alpha * acc + (beta != 0.0 ? beta * C0[c] : 0.0);
      }
  }
  return C;
}

// ---- randomness / optimizer ------------------------------------------------------------------------------
inline Vec dropout(const Vec& x, double p, sk::RngKey key) {
  Vec y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    double u = static_cast<double>(sk::philox_uniform_at(key, i));
    y[i] = u >= p ? x[i] / (1.0 - p) : 0.0;
  }
  return y;
}

inline void adamw(Vec& p, const Vec& g, Vec& m, Vec& v, double lr, double b1, double b2, double eps, double wd,
                  std::int64_t t) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    double mh = m[i] / (1 - std::pow(b1, static_cast<double>(t)));
    double vh = v[i] / (1 - std::pow(b2, static_cast<double>(t)));
    p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
  }
}

}  // namespace skref
