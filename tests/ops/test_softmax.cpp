// test_softmax.cpp — softmax (scale, mask, fill; fully masked rows), log_softmax and cross-entropy
// with ignore_index: forward and backward vs the float64 reference and finite differences.
#include <cfloat>

#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

const Shape kShapes[] = {{1, 1}, {1, 5000}, {7, 37}, {3, 5, 129}, {13, 3}, {2, 2, 2, 17}, {70, 517}};

std::vector<std::uint8_t> random_mask(Ops& t, std::int64_t rows, std::int64_t cols, bool one_full_row) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(rows * cols));
  for (auto& v : m) v = static_cast<std::uint8_t>((t.rng()() % 4) != 0);  // ~25% masked
  if (one_full_row && rows > 1)
    for (std::int64_t j = 0; j < cols; ++j) m[static_cast<std::size_t>(cols + j)] = 0;  // row 1 fully masked
  return m;
}

TEST_P(Ops, SoftmaxForward) {
  for (const auto& s : kShapes)
    for (int variant = 0; variant < 3; ++variant) {
      const std::int64_t cols = s.back(), rows = shape_numel(s) / cols;
      auto x = randn(shape_numel(s), 3.f);
      x[0] += 60.f;  // exp(scale * x) without max subtraction would overflow f32
      std::vector<std::uint8_t> m;
      float scale = variant == 0 ? 1.f : 0.37f;
      float fill = variant == 2 ? -1e4f : -FLT_MAX;
      if (variant > 0) m = random_mask(*this, rows, cols, true);
      Tensor y = m.empty() ? be().softmax(T(x, s)) : be().softmax(T(x, s), M(m, s), scale, fill);
      Vec ref = skref::softmax(D(x), rows, cols, m, scale, fill);
      EXPECT_TRUE(close(D(y), ref, 1e-5, 1e-7)) << shape_str(s) << " variant " << variant;
      if (variant > 0 && rows > 1) {  // the fully masked row is uniform
        auto yv = F(y);
        for (std::int64_t j = 0; j < cols; ++j)
          EXPECT_NEAR(yv[static_cast<std::size_t>(cols + j)], 1.0 / static_cast<double>(cols), 1e-6);
      }
    }
}

TEST_P(Ops, SoftmaxBackward) {
  for (const auto& s : kShapes)
    for (bool masked : {false, true}) {
      const std::int64_t cols = s.back(), rows = shape_numel(s) / cols;
      auto x = randn(shape_numel(s));
      auto dy = randn(shape_numel(s));
      std::vector<std::uint8_t> m;
      if (masked) m = random_mask(*this, rows, cols, true);
      float scale = masked ? 0.61f : 1.f;
      Tensor mt = masked ? M(m, s) : Tensor();
      Tensor y = be().softmax(T(x, s), mt, scale);
      Tensor dx = be().softmax_backward(T(dy, s), y, mt, scale);
      Vec ref = skref::softmax_backward(D(dy), skref::softmax(D(x), rows, cols, m, scale, -FLT_MAX), rows, cols, m, scale);
      EXPECT_TRUE(close(D(dx), ref, 1e-4, 2e-6)) << shape_str(s) << " masked " << masked;
      if (masked) {
        auto d = F(dx);
        for (std::size_t i = 0; i < m.size(); ++i)
          if (!m[i]) {
            ASSERT_EQ(d[i], 0.f) << "masked entry " << i << " got a gradient";
          }
      }
    }
}

TEST_P(Ops, SoftmaxBackwardFiniteDifferences) {
  Shape s{4, 9};
  auto x = randn(36), dy = randn(36);
  auto m = random_mask(*this, 4, 9, true);
  for (bool masked : {false, true}) {
    Tensor mt = masked ? M(m, s) : Tensor();
    const float scale = 1.3f;
    Tensor y = be().softmax(T(x, s), mt, scale);
    Tensor dx = be().softmax_backward(T(dy, s), y, mt, scale);
    auto f = [&](const std::vector<float>& v) { return F(be().softmax(T(v, s), mt, scale)); };
    EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx)))) << "masked " << masked;
  }
}

TEST_P(Ops, LogSoftmax) {
  for (const auto& s : kShapes) {
    const std::int64_t cols = s.back(), rows = shape_numel(s) / cols;
    auto x = randn(shape_numel(s), 3.f);
    x[0] -= 90.f;
    Tensor y = be().log_softmax(T(x, s));
    EXPECT_TRUE(close(D(y), skref::log_softmax(D(x), rows, cols), 1e-5, 1e-5)) << shape_str(s);
    auto dy = randn(shape_numel(s));
    Tensor dx = be().log_softmax_backward(T(dy, s), y);
    // Row sums of up to 5000 terms enter every entry: 1e-5 * sqrt(cols) absolute.
    EXPECT_TRUE(close(D(dx), skref::log_softmax_backward(D(dy), D(x), rows, cols), 1e-5,
                      1e-5 * std::sqrt(static_cast<double>(cols))))
        << shape_str(s);
  }
}

TEST_P(Ops, LogSoftmaxFiniteDifferences) {
  Shape s{3, 11};
  auto x = randn(33), dy = randn(33);
  Tensor y = be().log_softmax(T(x, s));
  Tensor dx = be().log_softmax_backward(T(dy, s), y);
  auto f = [&](const std::vector<float>& v) { return F(be().log_softmax(T(v, s))); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx))));
}

TEST_P(Ops, CrossEntropy) {
  struct Case {
    std::int64_t R, V;
  };
  const std::int64_t ignore = -100;
  for (const auto& c : {Case{1, 1}, Case{1, 5000}, Case{37, 259}, Case{129, 7}, Case{3, 33}, Case{70, 517}}) {
    auto x = randn(c.R * c.V, 2.f);
    x[0] += 50.f;
    auto t = randint(c.R, 0, c.V);
    if (c.R > 2) t[1] = ignore, t[static_cast<std::size_t>(c.R - 1)] = ignore;
    Tensor logits = T(x, {c.R, c.V});
    Tensor tt = I(t, {c.R});
    CrossEntropyOut o = be().cross_entropy(logits, tt, ignore);
    skref::XentRef ref = skref::cross_entropy(D(x), c.R, c.V, t, ignore);
    EXPECT_EQ(o.count, ref.count);
    EXPECT_NEAR(o.loss.item(), ref.loss, 1e-5 * (1 + std::fabs(ref.loss))) << c.R << "x" << c.V;
    EXPECT_TRUE(close(D(o.lse), ref.lse, 1e-6, 1e-5));
    const float dloss = 0.73f;
    Tensor d = be().cross_entropy_backward(dloss, logits, tt, o, ignore);
    EXPECT_TRUE(close(D(d), skref::cross_entropy_backward(dloss, D(x), c.R, c.V, t, ignore), 1e-4, 1e-7))
        << c.R << "x" << c.V;
    if (c.R > 2) {
      auto dv = F(d);
      for (std::int64_t j = 0; j < c.V; ++j) ASSERT_EQ(dv[static_cast<std::size_t>(c.V + j)], 0.f) << "ignored row";
    }
  }
}

TEST_P(Ops, CrossEntropyAllIgnored) {
  auto x = randn(12);
  Tensor tt = I({-1, -1, -1}, {3});
  CrossEntropyOut o = be().cross_entropy(T(x, {3, 4}), tt, -1);
  EXPECT_EQ(o.count, 0);
  EXPECT_EQ(o.loss.item(), 0.f);
  Tensor d = be().cross_entropy_backward(1.f, T(x, {3, 4}), tt, o, -1);
  for (float v : F(d)) EXPECT_EQ(v, 0.f);
}

TEST_P(Ops, CrossEntropyFiniteDifferences) {
  const std::int64_t R = 5, V = 7, ignore = 3;  // ignore_index inside the vocabulary range
  auto x = randn(R * V);
  std::vector<std::int64_t> t = {0, 3, 6, 2, 3};
  Tensor tt = I(t, {R});
  CrossEntropyOut o = be().cross_entropy(T(x, {R, V}), tt, ignore);
  EXPECT_EQ(o.count, 3);
  const float dloss = 1.7f;
  Tensor d = be().cross_entropy_backward(dloss, T(x, {R, V}), tt, o, ignore);
  auto f = [&](const std::vector<float>& v) {
    return std::vector<float>{be().cross_entropy(T(v, {R, V}), tt, ignore).loss.item()};
  };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, {dloss}, D(d))));
}

}  // namespace
}  // namespace sk::test
