// Generation helpers and AutoregressiveWrapper: top_k / top_p filters, temperature, sampling,
// per-row EOS stopping (D15 corrected), random truncation (D10 corrected), and the loss.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

TEST(AutoregressiveLoss, MatchesManualCrossEntropyAndBackprops) {
  ARFixture f;
  AutoregressiveWrapper ar(*f.lm);
  Context c = test::cpu_context();
  Backend& be = c.backend();
  Tensor x = test::rand_tokens(2, 28, 23, 9);  // T = 27 -> padded to 32 on the left
  ARLossStash st;
  Tensor loss = ar.loss(x, Tensor(), false, st, c);
  // Manual: left-pad the inputs, run the LM, cut, cross-entropy ignoring target 0.
  AutopadStash ps;
  Tensor logits = ar.padded().forward(be.narrow(x, 1, 0, 27), ps, c);
  CrossEntropyOut ce = be.cross_entropy(logits.reshape({54, 23}), be.narrow(x, 1, 1, 27).reshape({54}), 0);
  EXPECT_NEAR(loss.item(), ce.loss.item(), 1e-6);
  ar.loss_backward(st, c);
  double n = 0;
  for (float v : f.ps.flat_grads().to_vector<float>()) n += std::abs(v);
  EXPECT_GT(n, 0.0);
}

}  // namespace
}  // namespace sk
