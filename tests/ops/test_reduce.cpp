// test_reduce.cpp — sum/mean/max over any axis, logsumexp, cumsum: forward and backward, against
// the float64 reference and finite differences.
#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

const ReduceOp kRed[] = {ReduceOp::sum, ReduceOp::mean, ReduceOp::max};

struct AxisCase {
  Shape s;
  int axis;
};
// Odd shapes, every axis position, negative axes, a single row and a 5000-wide row.
const AxisCase kCases[] = {{{7, 37}, 1},     {{7, 37}, 0},     {{3, 5, 129}, 1}, {{3, 5, 129}, -1},
                           {{3, 5, 129}, 0}, {{1, 5000}, -1},  {{5000, 3}, 0},   {{1}, 0},
                           {{2, 1, 3}, 1},   {{11, 13, 3}, 2}, {{70, 517}, 1}, {{70, 517}, 0}};

TEST_P(Ops, ReduceForward) {
  for (const auto& c : kCases)
    for (ReduceOp op : kRed)
      for (bool keep : {false, true}) {
        auto x = randn(shape_numel(c.s));
        Tensor y = be().reduce(T(x, c.s), c.axis, op, keep);
        int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
        Shape want = c.s;
        if (keep) want[static_cast<std::size_t>(ax)] = 1;
        else want.erase(want.begin() + ax);
        EXPECT_EQ(y.shape(), want);
        Vec ref = skref::reduce(static_cast<skref::Red>(op), D(x), c.s, ax);
        // f32 sums of n terms: error <= ~n * 2^-24 * sum|x| in the worst case; 1e-6 * sqrt(n) per unit
        // of the row's scale is far above the typical error and far below any real mistake.
        double n = static_cast<double>(c.s[static_cast<std::size_t>(ax)]);
        EXPECT_TRUE(close(D(y), ref, 1e-5, 2e-6 * std::sqrt(n) + 1e-6))
            << op_name(op) << " " << shape_str(c.s) << " axis " << c.axis << " keepdim " << keep;
      }
}

TEST_P(Ops, ReduceBackward) {
  for (const auto& c : kCases)
    for (ReduceOp op : kRed) {
      int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
      auto x = distinct(shape_numel(c.s), 0.01f);  // no ties in max
      Tensor xt = T(x, c.s);
      Tensor y = be().reduce(xt, c.axis, op, false);
      auto dy = randn(y.numel());
      Tensor dx = be().reduce_backward(T(dy, y.shape()), xt, y, c.axis, op, false);
      EXPECT_EQ(dx.shape(), c.s);
      Vec ref = skref::reduce_backward(static_cast<skref::Red>(op), D(dy), D(x), c.s, ax);
      EXPECT_TRUE(close(D(dx), ref, 1e-6, 1e-7)) << op_name(op) << " " << shape_str(c.s) << " axis " << c.axis;
    }
}

TEST_P(Ops, ReduceBackwardKeepdimAndMaxTies) {
  // keepdim=true backward, and max with ties: the gradient goes to the first maximum only.
  Shape s{2, 4, 3};
  std::vector<float> x = {1, 5, 2, 5, 5, 0, 3, 1, 2, 5, 0, 2,  //
                          7, 7, 7, 7, 7, 7, 0, 0, 0, 7, 7, 7};
  Tensor xt = T(x, s);
  Tensor y = be().reduce(xt, 1, ReduceOp::max, true);
  EXPECT_EQ(y.shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(F(y), (std::vector<float>{5, 5, 2, 7, 7, 7}));
  auto dy = randn(6);
  Tensor dx = be().reduce_backward(T(dy, {2, 1, 3}), xt, y, 1, ReduceOp::max, true);
  Vec ref = skref::reduce_backward(skref::Red::max, D(dy), D(x), s, 1);
  EXPECT_TRUE(close(D(dx), ref, 0, 0));
  auto v = F(dx);
  EXPECT_EQ(v[1], dy[1]);  // column 1 of batch 0: max 5 first at row 0
  EXPECT_EQ(v[7], 0.f);    // ... not at row 2
}

TEST_P(Ops, ReduceBackwardFiniteDifferences) {
  const AxisCase small[] = {{{3, 5, 7}, 1}, {{4, 9}, -1}, {{5, 3}, 0}};
  for (const auto& c : small)
    for (ReduceOp op : kRed) {
      auto x = distinct(shape_numel(c.s), 0.05f);  // gaps > 2h: max stays at the same index
      Tensor xt = T(x, c.s);
      Tensor y = be().reduce(xt, c.axis, op, false);
      auto dy = randn(y.numel());
      Tensor dx = be().reduce_backward(T(dy, y.shape()), xt, y, c.axis, op, false);
      auto f = [&](const std::vector<float>& v) { return F(be().reduce(T(v, c.s), c.axis, op, false)); };
      EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx)))) << op_name(op) << " " << shape_str(c.s);
    }
}

TEST_P(Ops, LogSumExp) {
  for (const auto& c : kCases) {
    int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
    auto x = randn(shape_numel(c.s), 3.f);
    x[0] += 80.f;  // a large entry: the naive exp(x) would overflow in f32
    Tensor xt = T(x, c.s);
    Tensor y = be().logsumexp(xt, c.axis, false);
    EXPECT_TRUE(close(D(y), skref::logsumexp(D(x), c.s, ax), 1e-5, 1e-5)) << shape_str(c.s) << " axis " << c.axis;
    auto dy = randn(y.numel());
    Tensor dx = be().logsumexp_backward(T(dy, y.shape()), xt, y, c.axis, false);
    EXPECT_TRUE(close(D(dx), skref::logsumexp_backward(D(dy), D(x), c.s, ax), 1e-4, 1e-6))
        << shape_str(c.s) << " axis " << c.axis;
  }
  // keepdim shapes
  Tensor y = be().logsumexp(T(randn(15), {3, 5}), 0, true);
  EXPECT_EQ(y.shape(), (Shape{1, 5}));
}

TEST_P(Ops, LogSumExpFiniteDifferences) {
  for (const auto& c : {AxisCase{{3, 5, 7}, 1}, AxisCase{{4, 9}, -1}}) {
    auto x = randn(shape_numel(c.s));
    Tensor xt = T(x, c.s);
    Tensor y = be().logsumexp(xt, c.axis, true);
    auto dy = randn(y.numel());
    Tensor dx = be().logsumexp_backward(T(dy, y.shape()), xt, y, c.axis, true);
    auto f = [&](const std::vector<float>& v) { return F(be().logsumexp(T(v, c.s), c.axis, true)); };
    EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx)))) << shape_str(c.s);
  }
}

TEST_P(Ops, Cumsum) {
  for (const auto& c : kCases)
    for (bool rev : {false, true}) {
      int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
      auto x = randn(shape_numel(c.s));
      Tensor y = be().cumsum(T(x, c.s), c.axis, rev);
      EXPECT_EQ(y.shape(), c.s);
      double n = static_cast<double>(c.s[static_cast<std::size_t>(ax)]);
      // Prefix sums of up to 5000 N(0,1) terms (a parallel scan may associate differently).
      EXPECT_TRUE(close(D(y), skref::cumsum(D(x), c.s, ax, rev), 1e-5, 2e-6 * std::sqrt(n) + 1e-6))
          << shape_str(c.s) << " axis " << c.axis << " reverse " << rev;
    }
}

TEST_P(Ops, CumsumBackwardFiniteDifferences) {
  // backward of cumsum(x, axis, reverse) is cumsum(dy, axis, !reverse) (backend.h).
  for (bool rev : {false, true}) {
    Shape s{3, 8, 2};
    auto x = randn(48), dy = randn(48);
    Tensor dx = be().cumsum(T(dy, s), 1, !rev);
    // float64 analytic: dx_j = sum over outputs i that include x_j of dy_i.
    Vec ref = skref::cumsum(D(dy), s, 1, !rev);
    EXPECT_TRUE(close(D(dx), ref, 1e-5, 1e-5));
    auto f = [&](const std::vector<float>& v) { return F(be().cumsum(T(v, s), 1, rev)); };
    EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx)))) << "reverse " << rev;
  }
}

}  // namespace
}  // namespace sk::test
