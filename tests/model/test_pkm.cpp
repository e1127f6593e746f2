// Product-key memory: BatchNorm train/eval semantics, one running-statistics update per forward
// (none on a reversible recompute, D7 corrected), and gradients against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "model/layers/pkm.h"
#include "model_test_util.h"

namespace sk {
namespace {

struct PKMFixture {
  ParamSet ps;
  std::unique_ptr<PKM> pkm;
  PKMFixture(std::int64_t dim, std::int64_t num_keys) {
    PKMConfig cfg;
    cfg.dim = dim;
    cfg.num_keys = num_keys;
    pkm = std::make_unique<PKM>(cfg, ps, "p.fn.");
    ps.finalize(Device::cpu, 11);
  }
  Buffer* buf(const std::string& n) { return ps.find_buffer("p.fn.norm.fn." + n); }
};

TEST(PKM, NamesShapesAndGroups) {
  PKMFixture f(8, 40);
  EXPECT_EQ(f.ps.find("p.fn.to_queries.weight")->shape, (Shape{1024, 8}));
  EXPECT_EQ(f.ps.find("p.fn.norm.fn.weight")->shape, (Shape{1024}));
  EXPECT_EQ(f.ps.find("p.fn.keys")->shape, (Shape{4, 40, 2, 128}));
  EXPECT_EQ(f.ps.find("p.fn.values.weight")->shape, (Shape{1600, 8}));
  EXPECT_EQ(f.ps.find("p.fn.values.weight")->group, ParamGroup::pkm_values);
  ASSERT_NE(f.buf("running_mean"), nullptr);
  EXPECT_EQ(f.buf("num_batches_tracked")->value.dtype(), DType::i64);
  EXPECT_EQ(f.buf("num_batches_tracked")->value.shape(), Shape{});
}

TEST(PKM, TrainingUpdatesRunningStatsOncePerForward) {
  PKMFixture f(8, 40);
  Context c = test::cpu_context(/*training=*/true);
  Backend& be = c.backend();
  Tensor x = test::randn({2, 6, 8}, 3);
  Stash s;
  f.pkm->forward(x, s, c);
  // Expected statistics of q = x·Wqᵀ over the 12 positions.
  Tensor q = be.matmul(x.reshape({12, 8}), f.ps.find("p.fn.to_queries.weight")->value, false, true);
  auto qv = q.to_vector<float>();
  auto rm = f.buf("running_mean")->value.to_vector<float>();
  auto rv = f.buf("running_var")->value.to_vector<float>();
  for (int ch = 0; ch < 1024; ch += 97) {
    double m = 0, v = 0;
    for (int r = 0; r < 12; ++r) m += qv[static_cast<std::size_t>(r * 1024 + ch)];
    m /= 12;
    for (int r = 0; r < 12; ++r) v += std::pow(qv[static_cast<std::size_t>(r * 1024 + ch)] - m, 2);
    v /= 11;  // unbiased
    EXPECT_NEAR(rm[static_cast<std::size_t>(ch)], 0.1 * m, 1e-5);
    EXPECT_NEAR(rv[static_cast<std::size_t>(ch)], 0.9 + 0.1 * v, 1e-4);
  }
  EXPECT_EQ(f.buf("num_batches_tracked")->value.to_vector<std::int64_t>()[0], 1);
  // A reversible recompute redraws the forward but must not update again.
  Context rc = c;
  rc.recompute = true;
  Stash s2;
  f.pkm->forward(x, s2, rc);
  EXPECT_EQ(f.buf("num_batches_tracked")->value.to_vector<std::int64_t>()[0], 1);
  EXPECT_EQ(f.buf("running_mean")->value.to_vector<float>(), rm);
  // Eval mode never updates.
  Stash s3;
  f.pkm->forward(x, s3, test::cpu_context(false));
  EXPECT_EQ(f.buf("num_batches_tracked")->value.to_vector<std::int64_t>()[0], 1);
}

TEST(PKM, EvalUsesRunningStatistics) {
  PKMFixture f(8, 40);
  Context c = test::cpu_context(false);
  Tensor x = test::randn({1, 4, 8}, 3);
  Stash s1;
  Tensor y1 = f.pkm->forward(x, s1, c);
  // Shift the running mean by the batch's own mean and rescale the variance: the output must change.
  f.buf("running_var")->value.copy_from(Tensor::full({1024}, 4.f));
  Stash s2;
  Tensor y2 = f.pkm->forward(x, s2, c);
  EXPECT_GT(test::max_abs_diff(y1, y2), 1e-4);
  // Single position batches are fine in eval mode; training mode needs > 1 position.
  Stash s3;
  EXPECT_NO_THROW(f.pkm->forward(test::randn({1, 1, 8}, 4), s3, c));
  EXPECT_THROW(f.pkm->forward(test::randn({1, 1, 8}, 4), s3, test::cpu_context(true)), Error);
}

void pkm_gradcheck(bool training) {
  PKMFixture f(8, 36);
  test::pkm_margins(f.ps, "p.fn.", 36, 0.2f);
  Context c = test::cpu_context(training);
  c.recompute = true;  // keep the running statistics fixed while probing
  Backend& be = c.backend();
  Tensor x = test::randn({2, 5, 8}, 21);
  Tensor w = test::randn({2, 5, 8}, 22);
  Stash s;
  f.pkm->forward(x, s, c);
  Tensor dx = f.pkm->backward(w, s, c);
  auto loss = [&]() {
    Stash s2;
    auto v = be.mul(f.pkm->forward(x, s2, c), w).to_vector<float>();
    double t = 0;
    for (float e : v) t += e;
    return t;
  };
  test::GradCheck r = test::finite_difference_check(f.ps, loss, 6, 1e-2, 5);
  EXPECT_LT(r.worst, 5e-2) << r.worst_name;
  EXPECT_LT(r.aggregate(), 1e-2);
  EXPECT_EQ(r.skipped, 0) << "the constructed margins should keep every decision fixed";
  // Input gradient.
  std::vector<float> xv = x.to_vector<float>(), dxv = dx.to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); i += 9) {
    auto xp = xv, xm = xv;
    xp[i] += 2e-3f;
    xm[i] -= 2e-3f;
    auto eval = [&](const std::vector<float>& xx) {
      Stash s2;
      auto v = be.mul(f.pkm->forward(Tensor::from_vector(xx, x.shape()), s2, c), w).to_vector<float>();
      double t = 0;
      for (float e : v) t += e;
      return t;
    };
    double fd = (eval(xp) - eval(xm)) / 4e-3;
    EXPECT_NEAR(fd, dxv[i], 3e-2 * std::max(1.0, std::abs(fd))) << "x[" << i << "]";
  }
}

TEST(PKM, GradientsMatchFiniteDifferencesTrain) { pkm_gradcheck(true); }
TEST(PKM, GradientsMatchFiniteDifferencesEval) { pkm_gradcheck(false); }

}  // namespace
}  // namespace sk
