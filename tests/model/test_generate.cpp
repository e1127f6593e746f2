// Generation helpers and AutoregressiveWrapper: top_k / top_p filters, temperature, sampling,
// per-row EOS stopping (D15 corrected), random truncation (D10 corrected), and the loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "model/lm/autoregressive.h"
#include "model_test_util.h"

namespace sk {
namespace {

const float kInf = std::numeric_limits<float>::infinity();

TEST(Filters, TopKKeepsFloorOfOneMinusThresTimesV) {
  std::vector<float> l = {0.1f, 3.f, -1.f, 2.f, 5.f, 0.f, 1.f, 4.f, -2.f, 0.5f};  // V = 10
  auto a = l;
  filter_top_k(a, 0.7);  // int(0.3 * 10) = 3 (0.30000000000000004 * 10)
  int kept = 0;
  for (float v : a) kept += std::isfinite(v);
  EXPECT_EQ(kept, 3);
  EXPECT_EQ(a[4], 5.f);
  EXPECT_EQ(a[7], 4.f);
  EXPECT_EQ(a[1], 3.f);
  EXPECT_EQ(a[3], -kInf);
  // Default 0.9 with V = 10: int(0.0999…98 · 10) = 0 in the reference (NaN); D15: keep one.
  auto b = l;
  filter_top_k(b, 0.9);
  kept = 0;
  for (float v : b) kept += std::isfinite(v);
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(b[4], 5.f);
}

TEST(Filters, TopPUsesTheReferenceConvention) {
  // Probabilities ~ [0.5, 0.3, 0.15, 0.05] (sorted order 0, 1, 2, 3).
  std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  auto a = l;
  filter_top_p(a, 0.9);  // remove when the mass before exceeds 0.1: only the first survives
  EXPECT_TRUE(std::isfinite(a[0]));
  EXPECT_EQ(a[1], -kInf);
  EXPECT_EQ(a[2], -kInf);
  auto b = l;
  filter_top_p(b, 0.3);  // 1 - thres = 0.7: keep 0 (before 0), 1 (before 0.5), drop 2 (before 0.8)
  EXPECT_TRUE(std::isfinite(b[0]));
  EXPECT_TRUE(std::isfinite(b[1]));
  EXPECT_EQ(b[2], -kInf);
  EXPECT_EQ(b[3], -kInf);
  auto c = l;  // unsorted input: the filter works on the sorted order and maps back
  std::swap(c[0], c[3]);
  filter_top_p(c, 0.9);
  EXPECT_TRUE(std::isfinite(c[3]));
  EXPECT_EQ(c[0], -kInf);
}

TEST(Sampling, InverseCdfAndTemperature) {
  std::vector<float> l = {0.f, std::log(3.f), -kInf};  // p = [0.25, 0.75, 0]
  EXPECT_EQ(sample_from_logits(l, 1.0, 0.1f), 0);
  EXPECT_EQ(sample_from_logits(l, 1.0, 0.3f), 1);
  EXPECT_EQ(sample_from_logits(l, 1.0, 0.999f), 1);  // never the filtered entry
  // Low temperature -> the arg-max; high temperature flattens.
  EXPECT_EQ(sample_from_logits(l, 0.01, 0.2f), 1);
  EXPECT_EQ(sample_from_logits(l, 100.0, 0.45f), 0);  // p ≈ [0.4986, 0.5014]
  EXPECT_THROW(sample_from_logits({-kInf, -kInf}, 1.0, 0.5f), Error);
}

struct ARFixture {
  ParamSet ps;
  std::unique_ptr<SinkhornLM> lm;
  ARFixture() {
    LMConfig c = test::tiny_lm(true);
    lm = std::make_unique<SinkhornLM>(c, ps);
    ps.finalize(Device::cpu, 5);
  }
};

TEST(Generate, PerRowEosStopAndLength) {
  ARFixture f;
  // Make token 7 overwhelmingly likely everywhere: large to_logits bias.
  std::vector<float> bias(23, 0.f);
  bias[7] = 50.f;
  f.ps.find("to_logits.bias")->value.copy_from(Tensor::from_vector(bias, {23}));
  AutoregressiveWrapper ar(*f.lm);
  Context c = test::cpu_context();
  GenerateOptions o;
  o.seq_len = 5;
  o.filter = SampleFilter::none;
  Tensor start = test::rand_tokens(3, 4, 23, 1);
  Tensor out = ar.generate(start, Tensor(), o, c);
  EXPECT_EQ(out.shape(), (Shape{3, 5}));
  for (auto v : out.to_vector<std::int64_t>()) EXPECT_EQ(v, 7);
  // With eos = 7 every row stops after one step.
  o.eos_token = 7;
  Tensor out2 = ar.generate(start, Tensor(), o, c);
  EXPECT_EQ(out2.shape(), (Shape{3, 1}));
  // Per-row: rows stop independently; finished rows are padded with pad_value (0). Two equally
  // likely tokens (7 and 9, eos = 9) give every row its own stream and its own stopping step.
  bias[9] = 50.f;
  f.ps.find("to_logits.bias")->value.copy_from(Tensor::from_vector(bias, {23}));
  o.seq_len = 30;
  o.eos_token = 9;
  Tensor out3 = ar.generate(start, Tensor(), o, c);
  auto v3 = out3.to_vector<std::int64_t>();
  const std::int64_t n = out3.dim(1);
  ASSERT_GE(n, 1);
  for (std::int64_t b = 0; b < 3; ++b) {
    bool seen_eos = false;
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t t = v3[static_cast<std::size_t>(b * n + j)];
      if (seen_eos) {
        EXPECT_EQ(t, 0) << "row " << b << " continued after its eos";
      } else {
        EXPECT_TRUE(t == 7 || t == 9);
      }
      if (t == 9) seen_eos = true;
    }
    if (n < 30) {
      EXPECT_TRUE(seen_eos) << "stopped early although row " << b << " had not finished";
    }
  }
  // Deterministic for the same context key.
  EXPECT_EQ(ar.generate(start, Tensor(), o, c).to_vector<std::int64_t>(), v3);
}

TEST(Generate, UsesTheLastMaxSeqLenTokensAndTheMask) {
  ARFixture f;
  AutoregressiveWrapper ar(*f.lm);
  Context c = test::cpu_context();
  GenerateOptions o;
  o.seq_len = 3;
  o.filter = SampleFilter::top_k;
  Tensor start = test::rand_tokens(2, 40, 23, 1);  // longer than max_seq_len = 32
  Tensor mask = test::right_pad_mask(2, 40, {40, 40});
  Tensor out = ar.generate(start, mask, o, c);
  EXPECT_EQ(out.shape(), (Shape{2, 3}));
}

TEST(RandomTruncate, LengthsMaskAndPadding) {
  const std::int64_t B = 4, n = 9;
  Tensor x = test::rand_tokens(B, n, 20, 3);
  Tensor m = test::right_pad_mask(B, n, {9, 9, 6, 9});
  Truncated t = random_truncate(x, m, /*pad_value=*/5, RngKey{1, 2});
  const std::int64_t L = t.tokens.dim(1);
  EXPECT_LE(L, n - 1);
  EXPECT_GE(L, 2);
  auto xv = x.to_vector<std::int64_t>(), tv = t.tokens.to_vector<std::int64_t>();
  auto mv = m.to_vector<std::uint8_t>(), tm = t.mask.to_vector<std::uint8_t>();
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t pad = 0;  // the callers' masks are right-padded, so leading mask zeros are padding
    while (pad < L && tm[static_cast<std::size_t>(b * L + pad)] == 0) {
      EXPECT_EQ(tv[static_cast<std::size_t>(b * L + pad)], 5) << "pad_value is used (D10)";
      ++pad;
    }
    const std::int64_t kept = L - pad;
    EXPECT_GE(kept, 2);
    for (std::int64_t j = 0; j < kept; ++j) {
      EXPECT_EQ(tv[static_cast<std::size_t>(b * L + pad + j)], xv[static_cast<std::size_t>(b * n + j)]);
      EXPECT_EQ(tm[static_cast<std::size_t>(b * L + pad + j)], mv[static_cast<std::size_t>(b * n + j)]);  // D10
    }
  }
  // Same key, same result.
  Truncated t2 = random_truncate(x, m, 5, RngKey{1, 2});
  EXPECT_EQ(t2.tokens.to_vector<std::int64_t>(), tv);
}

// Independent reference for the wrapper's loss: left-pad by hand (token 0, mask false on the
// padding), run the bare LM forward, read the logits back, cut them to the original positions and
// compute the shifted cross-entropy with the ignore index in float64 on the host.
struct HostCE {
  double loss = 0;
  std::int64_t count = 0;
};
HostCE host_shifted_ce(SinkhornLM& lm, const Tensor& x, const Tensor& mask, std::int64_t ignore, const Context& c) {
  const std::int64_t B = x.dim(0), T = x.dim(1) - 1, m = lm.config().bucket_size;
  const std::int64_t P = (T + m - 1) / m * m, pad = P - T;
  auto xv = x.to_vector<std::int64_t>();
  std::vector<std::uint8_t> mv = mask.defined() ? mask.to_vector<std::uint8_t>()
                                                : std::vector<std::uint8_t>(static_cast<std::size_t>(B * (T + 1)), 1);
  std::vector<std::int64_t> pt(static_cast<std::size_t>(B * P), 0);
  std::vector<std::uint8_t> pm(static_cast<std::size_t>(B * P), 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t) {
      pt[static_cast<std::size_t>(b * P + pad + t)] = xv[static_cast<std::size_t>(b * (T + 1) + t)];
      pm[static_cast<std::size_t>(b * P + pad + t)] = mv[static_cast<std::size_t>(b * (T + 1) + t)];
    }
  Context lc = c;
  lc.input_mask = (mask.defined() || pad > 0) ? Tensor::from_vector(pm, {B, P}) : Tensor();
  LMStash ls;
  Tensor logits = lm.forward(Tensor::from_vector(pt, {B, P}), ls, lc);
  const std::int64_t V = logits.dim(2);
  auto lv = logits.to_vector<float>();
  HostCE r;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t y = xv[static_cast<std::size_t>(b * (T + 1) + t + 1)];
      if (y == ignore) continue;
      const float* row = &lv[static_cast<std::size_t>((b * P + pad + t) * V)];
      double mx = -std::numeric_limits<double>::infinity();
      for (std::int64_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
      double se = 0;
      for (std::int64_t v = 0; v < V; ++v) se += std::exp(double(row[v]) - mx);
      r.loss += mx + std::log(se) - double(row[y]);
      ++r.count;
    }
  if (r.count > 0) r.loss /= double(r.count);
  return r;
}

struct ARCase {
  LMConfig lm = test::tiny_lm(true);
  ARConfig ar;
  std::int64_t B = 2, n = 28;      // x [B, n]: T = n − 1 inputs
  std::vector<std::int64_t> real;  // right-padding mask lengths (empty: no mask)
  double fd_tol = 2e-2;
};

// Loss against the float64 reference, then the wrapper's gradients (loss + loss_backward) against
// central differences of the wrapper's own loss.
void check_ar_loss(const ARCase& k) {
  ParamSet ps;
  SinkhornLM lm(k.lm, ps);
  ps.finalize(Device::cpu, 5);
  test::randomize(ps, 6, 0.5f);  // larger weights: gradients well above the f32 noise floor
  AutoregressiveWrapper ar(lm, k.ar);
  Context c = test::cpu_context();
  const std::int64_t ign = ar.ignore_index();
  Tensor x = test::rand_tokens(k.B, k.n, k.lm.num_tokens, 9);
  Tensor mask;
  {  // every row holds ignored targets; past a row's mask its tokens are the pad value (0)
    auto xv = x.to_vector<std::int64_t>();
    for (std::int64_t b = 0; b < k.B; ++b) {
      xv[static_cast<std::size_t>(b * k.n + 3 + b)] = ign;
      xv[static_cast<std::size_t>(b * k.n + k.n / 2)] = ign;
      if (!k.real.empty())
        for (std::int64_t t = k.real[static_cast<std::size_t>(b)]; t < k.n; ++t)
          xv[static_cast<std::size_t>(b * k.n + t)] = k.ar.pad_value;
    }
    x = Tensor::from_vector(xv, {k.B, k.n});
    if (!k.real.empty()) mask = test::right_pad_mask(k.B, k.n, k.real);
  }
  ARLossStash st;
  Tensor loss = ar.loss(x, mask, false, st, c);
  HostCE ref = host_shifted_ce(lm, x, mask, ign, c);
  ASSERT_GT(ref.count, 0);
  ASSERT_LT(ref.count, k.B * (k.n - 1));  // the ignore index really removes targets
  EXPECT_EQ(st.ce.count, ref.count);
  // f32 logits and an f32 log-sum-exp over V = 23 and a mean of ≤ 54 rows: ~1e-6 relative.
  EXPECT_NEAR(loss.item(), ref.loss, 1e-5 * std::max(1.0, std::abs(ref.loss)));

  ps.zero_grad();
  ar.loss_backward(st, c);
  auto f = [&] {
    ARLossStash s;
    return double(ar.loss(x, mask, false, s, c).item());
  };
  // Central differences (eps 2e-2 and 1e-2, Richardson-combined) at 4 random entries per parameter.
  // Noise: the loss is an f32 mean of O(3) terms, ~4e-7 absolute, so ~(4/3)·4e-7·√2/(2·1e-2) ≈ 4e-5
  // absolute per estimate; measured per parameter against its largest gradient entry (≥ ~2e-3 here,
  // the null keys; O(1e-2 … 1) elsewhere at weight scale 0.5) that is ≤ ~1e-2 (seen: ≤ 7e-3), and
  // the remaining O(eps⁴) truncation is far smaller, hence 2e-2. A wrong backward term gives O(1)
  // relative errors (a 5% scaling of the gradient already fails). Perturbations that flip a
  // sort-net top-k bucket choice (or a ReLU in the sort net) make the loss jump: those entries give
  // disagreeing eps / eps/2 estimates and are skipped, at most a fifth of them (as in test_lm.cpp).
  test::GradCheck r = test::finite_difference_check(ps, f, 4, 2e-2, 13);
  EXPECT_LT(r.worst, k.fd_tol) << r.worst_name;
  EXPECT_LT(r.aggregate(), 1e-2);
  EXPECT_GT(r.checked, 0);
  EXPECT_LE(r.skipped * 5, r.checked) << "too many entries next to a decision boundary";
  if (std::getenv("SK_FD_VERBOSE"))
    std::printf("[ ar fd ] worst %.2e aggregate %.2e (%d checked, %d skipped)\n", r.worst, r.aggregate(), r.checked,
                r.skipped);
}

// T = 27 (not a multiple of bucket_size 8): the Autopadder pads 5 on the left; row 1 has a mask.
TEST(AutoregressiveLoss, MatchesManualCrossEntropyAndBackprops) {
  ARCase k;
  k.real = {28, 19};
  check_ar_loss(k);
}

// A custom ignore index (not the pad value), a reversible stack, T = 21 (pad 3), no mask.
TEST(AutoregressiveLoss, MatchesFloat64CrossEntropyAndFiniteDifferencesIgnoreIndex) {
  ARCase k;
  k.lm.reversible = true;
  k.ar.ignore_index = 5;
  k.n = 22;
  check_ar_loss(k);
}

}  // namespace
}  // namespace sk
