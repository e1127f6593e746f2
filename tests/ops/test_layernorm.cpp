// test_layernorm.cpp — LayerNorm forward (mean, rstd, y) and backward (dx; dw, db accumulate),
// with and without affine parameters, vs the float64 reference and finite differences.
#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

const Shape kShapes[] = {{1, 1}, {1, 5000}, {7, 37}, {3, 5, 129}, {65, 3}, {2, 1, 1000}, {70, 517}};

TEST_P(Ops, LayerNormForward) {
  const float eps = 1e-5f;
  for (const auto& s : kShapes)
    for (bool affine : {true, false}) {
      const std::int64_t C = s.back(), rows = shape_numel(s) / C;
      auto x = randn(shape_numel(s), 2.f);
      for (auto& v : x) v += 3.f;  // non-zero mean: catches a one-pass E[x^2]-E[x]^2 variance
      auto w = randn(C), b = randn(C);
      LayerNormOut o = affine ? be().layernorm(T(x, s), T(w, {C}), T(b, {C}), eps) : be().layernorm(T(x, s), {}, {}, eps);
      skref::LnRef ref = skref::layernorm(D(x), rows, C, affine ? D(w) : Vec{}, affine ? D(b) : Vec{}, eps);
      EXPECT_EQ(o.y.shape(), s);
      EXPECT_EQ(o.mean.shape(), (Shape{rows}));
      EXPECT_TRUE(close(D(o.mean), ref.mean, 1e-6, 1e-6)) << shape_str(s);
      EXPECT_TRUE(close(D(o.rstd), ref.rstd, 1e-4, 1e-6)) << shape_str(s);
      EXPECT_TRUE(close(D(o.y), ref.y, 1e-4, 1e-5)) << shape_str(s) << " affine " << affine;
    }
}

TEST_P(Ops, LayerNormBackward) {
  const float eps = 1e-5f;
  for (const auto& s : kShapes)
    for (bool affine : {true, false}) {
      const std::int64_t C = s.back(), rows = shape_numel(s) / C;
      if (rows * C * C > 40'000'000) continue;  // the reference's explicit Jacobian is O(rows C^2)
      auto x = randn(shape_numel(s)), dy = randn(shape_numel(s));
      auto w = randn(C), b = randn(C);
      auto dw0 = randn(C), db0 = randn(C);  // existing grads: backward must add, not overwrite
      Tensor wt = affine ? T(w, {C}) : Tensor(), bt = affine ? T(b, {C}) : Tensor();
      Tensor xt = T(x, s);
      LayerNormOut o = be().layernorm(xt, wt, bt, eps);
      Tensor dw = affine ? T(dw0, {C}) : Tensor(), db = affine ? T(db0, {C}) : Tensor();
      Tensor dx = be().layernorm_backward(T(dy, s), xt, wt, o, dw, db);
      Vec rdx, rdw, rdb;
      skref::layernorm_backward(D(dy), D(x), rows, C, affine ? D(w) : Vec{}, eps, rdx, rdw, rdb);
      EXPECT_TRUE(close(D(dx), rdx, 1e-3, 1e-4)) << "dx " << shape_str(s) << " affine " << affine;
      if (affine) {
        for (std::size_t j = 0; j < rdw.size(); ++j) rdw[j] += dw0[j], rdb[j] += db0[j];
        // Column sums over up to 65 rows.
        EXPECT_TRUE(close(D(dw), rdw, 1e-4, 1e-4 * std::sqrt(static_cast<double>(rows)))) << "dw " << shape_str(s);
        EXPECT_TRUE(close(D(db), rdb, 1e-4, 1e-4 * std::sqrt(static_cast<double>(rows)))) << "db " << shape_str(s);
      }
    }
}

TEST_P(Ops, LayerNormBackwardFiniteDifferences) {
  const Shape s{4, 13};
  const std::int64_t C = 13;
  const float eps = 1e-5f;
  auto x = randn(52), dy = randn(52), w = randn(C), b = randn(C);
  Tensor xt = T(x, s), wt = T(w, {C}), bt = T(b, {C});
  LayerNormOut o = be().layernorm(xt, wt, bt, eps);
  Tensor dw = Tensor::zeros({C}, DType::f32, dev()), db = Tensor::zeros({C}, DType::f32, dev());
  Tensor dx = be().layernorm_backward(T(dy, s), xt, wt, o, dw, db);
  auto fx = [&](const std::vector<float>& v) { return F(be().layernorm(T(v, s), wt, bt, eps).y); };
  auto fw = [&](const std::vector<float>& v) { return F(be().layernorm(xt, T(v, {C}), bt, eps).y); };
  auto fb = [&](const std::vector<float>& v) { return F(be().layernorm(xt, wt, T(v, {C}), eps).y); };
  EXPECT_TRUE(fd_ok(skref::check_fd(fx, x, D(dy), D(dx)))) << "dx";
  EXPECT_TRUE(fd_ok(skref::check_fd(fw, w, D(dy), D(dw)))) << "dw";
  EXPECT_TRUE(fd_ok(skref::check_fd(fb, b, D(dy), D(db)))) << "db";
}

TEST_P(Ops, LayerNormGradsAccumulateAcrossCalls) {
  // Two backward calls into the same dw/db equal twice one call (the += contract).
  const Shape s{9, 31};
  auto x = randn(279), dy = randn(279), w = randn(31);
  Tensor xt = T(x, s), wt = T(w, {31});
  LayerNormOut o = be().layernorm(xt, wt, {}, 1e-5f);
  Tensor dw1 = Tensor::zeros({31}, DType::f32, dev()), none;
  be().layernorm_backward(T(dy, s), xt, wt, o, dw1, none);
  Tensor dw2 = Tensor::zeros({31}, DType::f32, dev());
  be().layernorm_backward(T(dy, s), xt, wt, o, dw2, none);
  be().layernorm_backward(T(dy, s), xt, wt, o, dw2, none);
  Vec twice = D(dw1);
  for (auto& v : twice) v *= 2;
  EXPECT_TRUE(close(D(dw2), twice, 1e-6, 1e-6));
}

}  // namespace
}  // namespace sk::test
