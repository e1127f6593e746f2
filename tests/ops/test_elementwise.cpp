// test_elementwise.cpp — broadcasting binary ops, unary ops (forward, backward vs the float64
// reference and vs finite differences), axpy, where, masked_fill, sum_to.
#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

// Forward of elementwise f32 ops: each output is one or two roundings away from the exact value
// (transcendentals within a few ulp), so 1e-5 relative plus 1e-6 absolute is generous but tight
// enough to catch any wrong formula.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

const BinaryOp kBinOps[] = {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::max, BinaryOp::min};

struct ShapePair {
  Shape a, b;
};
// Odd shapes: equal, both sides broadcasting, rank-0 and rank-1 operands, a 5000-wide row, and an
// output large enough to take the parallel path.
const ShapePair kPairs[] = {
    {{7, 37}, {7, 37}},   {{3, 1, 5}, {4, 1}},       {{1}, {5000}},        {{2, 3, 4, 5}, {3, 1, 5}},
    {{13, 1}, {1, 5000}}, {{}, {3}},                 {{1, 1}, {1, 1}},     {{5, 1, 3}, {1, 7, 1}},
};

// a on multiples of 0.1, b on multiples of 0.1 + 0.05: |a - b| >= 0.05 (max/min away from ties, and
// from the kink under finite differences), |b| >= 0.05 (div).
std::vector<float> grid(Ops& t, std::int64_t n, float offset) {
  auto k = t.randint(n, -15, 16);
  std::vector<float> v(k.size());
  for (std::size_t i = 0; i < k.size(); ++i) v[i] = 0.1f * static_cast<float>(k[i]) + offset;
  return v;
}

TEST_P(Ops, BinaryForwardBroadcast) {
  for (const auto& sp : kPairs)
    for (BinaryOp op : kBinOps) {
      auto a = grid(*this, shape_numel(sp.a), 0.f), b = grid(*this, shape_numel(sp.b), 0.05f);
      Tensor y = be().binary(T(a, sp.a), T(b, sp.b), op);
      Shape os;
      Vec ref = skref::binary(static_cast<skref::Bin>(op), D(a), sp.a, D(b), sp.b, &os);
      EXPECT_EQ(y.shape(), os);
      EXPECT_TRUE(close(D(y), ref, kRtol, kAtol)) << op_name(op) << " " << shape_str(sp.a) << " x " << shape_str(sp.b);
    }
}

TEST_P(Ops, BinaryBackwardMatchesReference) {
  for (const auto& sp : kPairs)
    for (BinaryOp op : kBinOps) {
      auto a = grid(*this, shape_numel(sp.a), 0.f), b = grid(*this, shape_numel(sp.b), 0.05f);
      Shape os = skref::broadcast_shape(sp.a, sp.b);
      auto dy = randn(shape_numel(os));
      auto [da, db] = be().binary_backward(T(dy, os), T(a, sp.a), T(b, sp.b), op);
      Vec ra, rb;
      skref::binary_backward(static_cast<skref::Bin>(op), D(dy), D(a), sp.a, D(b), sp.b, ra, rb);
      EXPECT_EQ(da.shape(), sp.a);
      EXPECT_EQ(db.shape(), sp.b);
      // Broadcast dims are summed: up to 5000 terms of O(1), f32 summation.
      double atol = 1e-5 * std::sqrt(static_cast<double>(shape_numel(os))) + 1e-6;
      EXPECT_TRUE(close(D(da), ra, 1e-5, atol)) << "da " << op_name(op) << " " << shape_str(sp.a) << " x " << shape_str(sp.b);
      EXPECT_TRUE(close(D(db), rb, 1e-5, atol)) << "db " << op_name(op) << " " << shape_str(sp.a) << " x " << shape_str(sp.b);
    }
}

TEST_P(Ops, BinaryBackwardFiniteDifferences) {
  const ShapePair small[] = {{{3, 1, 5}, {4, 1}}, {{2, 3}, {2, 3}}, {{1}, {7}}};
  for (const auto& sp : small)
    for (BinaryOp op : kBinOps) {
      auto a = grid(*this, shape_numel(sp.a), 0.f), b = grid(*this, shape_numel(sp.b), 0.05f);
      if (op == BinaryOp::div)  // keep |b| >= 0.55 so 1/b stays smooth over the step
        for (auto& v : b) v = v >= 0 ? v + 0.5f : v - 0.5f;
      Shape os = skref::broadcast_shape(sp.a, sp.b);
      auto dy = randn(shape_numel(os));
      auto [da, db] = be().binary_backward(T(dy, os), T(a, sp.a), T(b, sp.b), op);
      auto fa = [&](const std::vector<float>& x) { return F(be().binary(T(x, sp.a), T(b, sp.b), op)); };
      auto fb = [&](const std::vector<float>& x) { return F(be().binary(T(a, sp.a), T(x, sp.b), op)); };
      EXPECT_TRUE(fd_ok(skref::check_fd(fa, a, D(dy), D(da)))) << "da " << op_name(op) << " " << shape_str(sp.a);
      EXPECT_TRUE(fd_ok(skref::check_fd(fb, b, D(dy), D(db)))) << "db " << op_name(op) << " " << shape_str(sp.b);
    }
}

struct UnaryCase {
  UnaryOp op;
  float alpha;
  float lo, hi;   // input range
  bool avoid0;    // keep |x| >= 0.05 (kink at 0)
};
const UnaryCase kUnary[] = {
    {UnaryOp::neg, 0, -3, 3, false},       {UnaryOp::exp, 0, -2, 2, false},
    {UnaryOp::log, 0, 0.3f, 2, false},     {UnaryOp::sqrt, 0, 0.3f, 2, false},
    {UnaryOp::rsqrt, 0, 0.3f, 2, false},   {UnaryOp::square, 0, -2, 2, false},
    {UnaryOp::abs, 0, -2, 2, true},        {UnaryOp::relu, 0, -2, 2, true},
    {UnaryOp::leaky_relu, 0.1f, -2, 2, true}, {UnaryOp::gelu, 0, -4, 4, false},
    {UnaryOp::scale, -1.3f, -2, 2, false}, {UnaryOp::add_scalar, 0.7f, -2, 2, false},
    {UnaryOp::pow_scalar, 1.7f, 0.3f, 2, false}, {UnaryOp::sigmoid, 0, -4, 4, false},
    {UnaryOp::tanh, 0, -3, 3, false},
};

std::vector<float> unary_input(Ops& t, const UnaryCase& c, std::int64_t n) {
  auto x = t.randu(n, c.lo, c.hi);
  if (c.avoid0)
    for (auto& v : x)
      if (std::fabs(v) < 0.05f) v = v < 0 ? -0.05f - std::fabs(v) : 0.05f + v;
  return x;
}

bool needs_y(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::rsqrt || op == UnaryOp::sigmoid ||
         op == UnaryOp::tanh;
}

TEST_P(Ops, UnaryForward) {
  const Shape shapes[] = {{1}, {5000}, {3, 7, 11}, {70001}};
  for (const auto& c : kUnary)
    for (const auto& s : shapes) {
      auto x = unary_input(*this, c, shape_numel(s));
      Tensor y = be().unary(T(x, s), c.op, c.alpha);
      ASSERT_EQ(y.shape(), s);
      Vec ref(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) ref[i] = skref::un(static_cast<skref::Un>(c.op), x[i], c.alpha);
      EXPECT_TRUE(close(D(y), ref, kRtol, kAtol)) << op_name(c.op) << " " << shape_str(s);
    }
}

TEST_P(Ops, UnaryBackwardMatchesReference) {
  const Shape shapes[] = {{1}, {3, 7, 11}, {40001}};
  for (const auto& c : kUnary)
    for (const auto& s : shapes) {
      auto x = unary_input(*this, c, shape_numel(s));
      auto dy = randn(shape_numel(s));
      Tensor xt = T(x, s);
      Tensor y = be().unary(xt, c.op, c.alpha);
      Tensor dx = be().unary_backward(T(dy, s), xt, y, c.op, c.alpha);
      Vec ref(x.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        ref[i] = dy[i] * skref::un_grad(static_cast<skref::Un>(c.op), x[i], c.alpha);
      EXPECT_TRUE(close(D(dx), ref, 1e-5, 1e-6)) << op_name(c.op) << " " << shape_str(s);
    }
}

TEST_P(Ops, UnaryBackwardFiniteDifferences) {
  for (const auto& c : kUnary) {
    Shape s{5, 9};
    auto x = unary_input(*this, c, shape_numel(s));
    auto dy = randn(shape_numel(s));
    Tensor xt = T(x, s);
    Tensor dx = be().unary_backward(T(dy, s), xt, needs_y(c.op) ? be().unary(xt, c.op, c.alpha) : Tensor(), c.op,
                                    c.alpha);
    auto f = [&](const std::vector<float>& v) { return F(be().unary(T(v, s), c.op, c.alpha)); };
    EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx)))) << op_name(c.op);
  }
}

TEST_P(Ops, AxpyWhereMaskedFill) {
  const std::int64_t n = 40003;
  auto x = randn(n), y0 = randn(n), b = randn(n);
  std::vector<std::uint8_t> m(static_cast<std::size_t>(n));
  for (auto& v : m) v = static_cast<std::uint8_t>(rng()() & 1);

  Tensor y = T(y0, {n});
  be().axpy(y, T(x, {n}), -0.75f);
  Vec ref(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = y0[i] - 0.75 * x[i];
  EXPECT_TRUE(close(D(y), ref, kRtol, kAtol)) << "axpy";

  // axpy only needs equal element counts.
  Tensor y2 = T(y0, {n});
  be().axpy(y2, T(x, {1, n}), 1.f);
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<double>(y0[i]) + x[i];
  EXPECT_TRUE(close(D(y2), ref, kRtol, kAtol)) << "axpy reshaped";

  Tensor w = be().where(M(m, {n}), T(x, {n}), T(b, {n}));
  auto wv = F(w);
  Tensor mf = be().masked_fill(T(x, {n}), M(m, {n}), -7.5f);
  auto mv = F(mf);
  for (std::size_t i = 0; i < m.size(); ++i) {
    ASSERT_EQ(wv[i], m[i] ? x[i] : b[i]) << "where at " << i;
    ASSERT_EQ(mv[i], m[i] ? x[i] : -7.5f) << "masked_fill at " << i;
  }
}

TEST_P(Ops, SumTo) {
  Shape s{3, 4, 5};
  auto x = randn(60);
  for (const Shape& to : {Shape{4, 1}, Shape{5}, Shape{3, 1, 5}, Shape{1, 1, 1}, Shape{3, 4, 5}}) {
    Tensor y = be().sum_to(T(x, s), to);
    EXPECT_EQ(y.shape(), to);
    // Reference: the gradient of broadcasting `to` up to s, i.e. binary_backward of add.
    Vec da, db;
    skref::binary_backward(skref::Bin::add, D(x), Vec(60, 0.0), s, Vec(static_cast<std::size_t>(shape_numel(to)), 0.0), to,
                           da, db);
    EXPECT_TRUE(close(D(y), db, 1e-5, 1e-5)) << shape_str(to);
  }
}

}  // namespace
}  // namespace sk::test
