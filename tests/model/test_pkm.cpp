// Product-key memory: BatchNorm train/eval semantics, one running-statistics update per forward
// (none on a reversible recompute, D7 corrected), and gradients against finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

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

// Gradients against central finite differences, with every discrete choice held fixed by
// construction, measured, and checked — never guessed from the numbers:
//  * Every parameter value is set here from the test's own generators (pkm_margins for the
//    BatchNorm affine, keys and running statistics; to_queries and values below), so neither the
//    parameter initialisation nor the ParamSet's seed changes what is tested.
//  * Margins: a sub-key score is 10·a + (fixed key noise) + (small input part), a ∈ {1, 0.5, 0}
//    by key (pkm_margins), so the top 32 sub-keys per half and the top 32 candidate pairs are the
//    same for every row. pkm_decision_margin recomputes every score in float64 and the test
//    requires the smallest gap between a chosen and an unchosen score to be > 1 (it is ~3.2 for
//    train and eval). One FD step of eps = 0.1 moves a score by at most ~0.15 (a keys entry: the
//    query entry ≤ 1.5 times eps; bias, BatchNorm weight and to_queries entries move it 10 … 100
//    times less): far inside the gap, and float32 rounding of any GEMM kernel (~1e-5 of a score of
//    20) is 5 orders of magnitude below it.
//  * The decisions themselves (chosen sub-keys per half and chosen memory rows, as sets) are
//    compared with the unperturbed ones at every evaluation; an entry would be skipped only if they
//    changed, and the test requires that none does.
// Error budget: the scores (~20) and the loss (Σ of 80 f32 outputs) carry ~1e-5 of float32
// rounding, i.e. ~1.5e-4 in the Richardson estimate at eps = 0.1; with the decisions fixed the
// output is a smooth softmax of scores that move by < 0.15, so the O(eps⁴) truncation is of the
// same order. Against the per-parameter gradient scales (≥ ~7e-3: to_queries, the smallest) that
// is ≤ ~2e-2 per entry (seen ≤ 1e-2 with the Haswell, SandyBridge, Nehalem and Prescott OpenBLAS
// kernels), so 5e-2 (worst entry) / 1e-2 (aggregate) pass correct code on any kernel, while a wrong
// or missing backward term is an O(1) error.
std::vector<std::int64_t> pkm_decisions(PKMStash& st) {
  std::vector<std::int64_t> d = test::index_sets(st.idx);  // sub-keys per (head, half, row)
  const std::vector<std::int64_t> rows = test::index_sets(st.vidx);  // memory rows per (head, row)
  d.insert(d.end(), rows.begin(), rows.end());
  return d;
}

// The smallest gap between the K-th and (K+1)-th score of either top-k of the PKM (sub-keys per
// half, then candidate pairs), recomputed in float64 from the parameter values: how far every
// decision is from flipping.
double pkm_decision_margin(ParamSet& ps, const Tensor& x, bool training, std::int64_t nk) {
  const std::int64_t H = 4, K = 32, dk = 128, Q = 1024, D = x.dim(2), R = x.dim(0) * x.dim(1);
  auto val = [&](const char* n) { return ps.find(std::string("p.fn.") + n)->value.to_vector<float>(); };
  auto buf = [&](const char* n) { return ps.find_buffer(std::string("p.fn.norm.fn.") + n)->value.to_vector<float>(); };
  const std::vector<float> xv = x.to_vector<float>(), wq = val("to_queries.weight"), bw = val("norm.fn.weight"),
                           bb = val("norm.fn.bias"), keys = val("keys"), rm = buf("running_mean"), rv = buf("running_var");
  std::vector<double> q(static_cast<std::size_t>(R * Q));
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < Q; ++c) {
      double a = 0;
      for (std::int64_t i = 0; i < D; ++i) a += double(xv[static_cast<std::size_t>(r * D + i)]) * wq[static_cast<std::size_t>(c * D + i)];
      q[static_cast<std::size_t>(r * Q + c)] = a;
    }
  for (std::int64_t c = 0; c < Q; ++c) {
    double mean = rm[static_cast<std::size_t>(c)], var = rv[static_cast<std::size_t>(c)];
    if (training) {
      mean = var = 0;
      for (std::int64_t r = 0; r < R; ++r) mean += q[static_cast<std::size_t>(r * Q + c)] / double(R);
      for (std::int64_t r = 0; r < R; ++r) var += std::pow(q[static_cast<std::size_t>(r * Q + c)] - mean, 2) / double(R);
    }
    for (std::int64_t r = 0; r < R; ++r) {
      double& e = q[static_cast<std::size_t>(r * Q + c)];
      e = (e - mean) / std::sqrt(var + 1e-5) * bw[static_cast<std::size_t>(c)] + bb[static_cast<std::size_t>(c)];
    }
  }
  double margin = 1e300;
  auto top_gap = [&](std::vector<double> v) {  // sorted descending; returns the top K
    std::sort(v.begin(), v.end(), std::greater<>());
    margin = std::min(margin, v[static_cast<std::size_t>(K - 1)] - v[static_cast<std::size_t>(K)]);
    v.resize(static_cast<std::size_t>(K));
    return v;
  };
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t r = 0; r < R; ++r) {
      std::vector<double> top[2];
      for (std::int64_t p = 0; p < 2; ++p) {
        std::vector<double> sc(static_cast<std::size_t>(nk));
        for (std::int64_t n = 0; n < nk; ++n) {
          double a = 0;
          for (std::int64_t d = 0; d < dk; ++d)
            a += q[static_cast<std::size_t>(r * Q + p * 512 + h * dk + d)] *
                 keys[static_cast<std::size_t>(((h * nk + n) * 2 + p) * dk + d)];
          sc[static_cast<std::size_t>(n)] = a;
        }
        top[p] = top_gap(sc);
      }
      std::vector<double> cand;
      for (double a0 : top[0])
        for (double a1 : top[1]) cand.push_back(a0 + a1);
      top_gap(cand);
    }
  return margin;
}

void set_normal(ParamSet& ps, const std::string& name, float scale, std::uint64_t seed) {
  Parameter* p = ps.find(name);
  ASSERT_NE(p, nullptr) << name;
  p->value.copy_from(test::randn(p->shape, seed, scale));
}

void pkm_gradcheck(bool training) {
  PKMFixture f(8, 36);
  test::pkm_margins(f.ps, "p.fn.", 36, 0.2f);
  set_normal(f.ps, "p.fn.to_queries.weight", 1.f / std::sqrt(8.f), 31);
  set_normal(f.ps, "p.fn.values.weight", 1.f, 32);
  Context c = test::cpu_context(training);
  c.recompute = true;  // keep the running statistics fixed while probing
  Backend& be = c.backend();
  Tensor x = test::randn({2, 5, 8}, 21);
  Tensor w = test::randn({2, 5, 8}, 22);
  const double margin = pkm_decision_margin(f.ps, x, training, 36);
  EXPECT_GT(margin, 1.0) << "the constructed decision margins are too small";
  Stash s;
  f.pkm->forward(x, s, c);
  const std::vector<std::int64_t> base_decisions = pkm_decisions(s.get<PKMStash>());
  Tensor dx = f.pkm->backward(w, s, c);
  auto eval = [&](const Tensor& xx, std::vector<std::int64_t>* decisions) {
    Stash s2;
    auto v = be.mul(f.pkm->forward(xx, s2, c), w).to_vector<float>();
    if (decisions) *decisions = pkm_decisions(s2.get<PKMStash>());
    double t = 0;
    for (float e : v) t += e;
    return t;
  };
  auto loss = [&]() { return eval(x, nullptr); };
  auto decisions = [&]() {
    std::vector<std::int64_t> d;
    eval(x, &d);
    return d;
  };
  test::GradCheck r = test::finite_difference_check(f.ps, loss, 6, 1e-1, 5, decisions);
  EXPECT_LT(r.worst, 5e-2) << r.worst_name;
  EXPECT_LT(r.aggregate(), 1e-2);
  EXPECT_EQ(r.checked, 6 * static_cast<int>(f.ps.params().size()));
  EXPECT_EQ(r.skipped, 0) << "the constructed margins should keep every decision fixed";
  std::printf("PKM %s: smallest top-k gap %.3f; FD worst %.2e, aggregate %.2e (%d entries)\n",
              training ? "train" : "eval", margin, r.worst, r.aggregate(), r.checked);
  // Input gradient (a step of 5e-2 in x moves a score by < 2e-3: no decision can change).
  std::vector<float> xv = x.to_vector<float>(), dxv = dx.to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); i += 9) {
    auto xp = xv, xm = xv;
    xp[i] += 5e-2f;
    xm[i] -= 5e-2f;
    std::vector<std::int64_t> dp, dm;
    const double fd = (eval(Tensor::from_vector(xp, x.shape()), &dp) - eval(Tensor::from_vector(xm, x.shape()), &dm)) /
                      (double(xp[i]) - double(xm[i]));
    EXPECT_EQ(dp, base_decisions) << "x[" << i << "] + eps changed a decision";
    EXPECT_EQ(dm, base_decisions) << "x[" << i << "] - eps changed a decision";
    EXPECT_NEAR(fd, dxv[i], 3e-2 * std::max(1.0, std::abs(fd))) << "x[" << i << "]";
  }
}

TEST(PKM, GradientsMatchFiniteDifferencesTrain) { pkm_gradcheck(true); }
TEST(PKM, GradientsMatchFiniteDifferencesEval) { pkm_gradcheck(false); }

}  // namespace
}  // namespace sk
