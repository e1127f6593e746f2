// Mixed-precision Linear GEMMs (Context::gemm_precision = bf16): a small LM's logits and parameter
// gradients stay close to the fp32 run, and are not identical to it (the mode changes the math).
//
// Tolerances, derived:
//   bf16 keeps 8 significand bits, so one rounding has relative error <= u = 2^-9 ≈ 1.95e-3.
//   A bf16 GEMM rounds both operands once (the fp32 accumulation adds nothing comparable), so each
//   product x·w carries a relative error <= 2u; with independent rounding errors (variance u²/3
//   each) a K-term dot product's relative L2 error is ≈ sqrt(2/3)·u ≈ 1.6e-3, at worst 2u ≈ 3.9e-3.
//   Logits of the test's model go through G GEMMs in sequence: per block to_q, to_kv, to_out, w1,
//   w2 (5) × depth 2, plus project_in, project_out and to_logits: G = 13. Errors of successive
//   GEMMs add (LayerNorm and the residual stream keep the gain near 1): independent -> sqrt(13) ×
//   1.6e-3 ≈ 6e-3; all aligned (worst case) -> 13 × 3.9e-3 ≈ 5e-2. Bound: rel L2 err(logits) <
//   2e-2, ~3× the typical estimate, which leaves room for the gain of softmax / GELU, and still
//   well below the worst case.
//   Gradients: every Linear runs two more bf16 GEMMs in backward (dX = dY·W, dW += dYᵀ·X), and
//   dW also inherits the forward error of X and of dY: about 3G = 39 roundings -> sqrt(39) ×
//   1.6e-3 ≈ 1e-2 typical. Bound: rel L2 err of all gradients together < 5e-2; per parameter
//   tensor (small tensors average fewer errors, a bias sums dY only) < 1e-1 (see check below for
//   gradients that are mathematically zero).
//   Not identical: an fp32 run differs from itself by 0, the bf16 run by ~u; we require the logits'
//   rel err > 1e-4 (≈ u/20), far above fp32 reassociation noise (~1e-7).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "model/layers/linear.h"
#include "model/lm/sinkhorn_lm.h"
#include "model_test_util.h"

namespace sk {
namespace {

constexpr double kLogitsTol = 2e-2;
constexpr double kGradsTol = 5e-2;
constexpr double kParamGradTol = 1e-1;
constexpr double kMinEffect = 1e-4;

double l2(const Tensor& t) {
  double s = 0;
  for (float v : t.to_vector<float>()) s += double(v) * double(v);
  return std::sqrt(s);
}

double l2_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - double(y[i])) * (double(x[i]) - double(y[i]));
  return std::sqrt(s);
}

struct Run {
  Tensor logits;
  Tensor grads;                     // flat f32 gradients (copy)
  std::vector<Tensor> param_grads;  // per parameter, in ps.params() order
};

Run run(SinkhornLM& lm, ParamSet& ps, const Tensor& tokens, const Tensor& w, Precision p, bool training) {
  Context c = test::cpu_context(training);
  c.gemm_precision = p;
  ps.zero_grad();
  LMStash st;
  Run r;
  r.logits = lm.forward(tokens, st, c);
  lm.backward(w, st, c);
  r.grads = c.backend().contiguous_copy(ps.flat_grads());
  for (const auto& prm : ps.params()) r.param_grads.push_back(c.backend().contiguous_copy(prm->grad));
  return r;
}

void check_close_not_equal(const LMConfig& cfg, bool training, bool pkm) {
  ParamSet ps;
  SinkhornLM lm(cfg, ps);
  ps.finalize(Device::cpu, 11);
  if (pkm)
    for (auto n : cfg.pkm_layers)
      test::pkm_margins(ps, "sinkhorn_transformer.layers.layers." + std::to_string(n - 1) + ".1.fn.", cfg.pkm_num_keys);
  const std::int64_t B = 2, T = 32;
  Tensor tokens = test::rand_tokens(B, T, cfg.num_tokens, 12);
  Tensor w = test::randn({B, T, lm.out_dim()}, 13);  // loss = Σ logits ⊙ w

  Run f32 = run(lm, ps, tokens, w, Precision::fp32, training);
  Run bf = run(lm, ps, tokens, w, Precision::bf16, training);
  Run f32b = run(lm, ps, tokens, w, Precision::fp32, training);

  // fp32 is deterministic: the bf16 run in between leaves no trace.
  EXPECT_EQ(test::max_abs_diff(f32.logits, f32b.logits), 0.0);
  EXPECT_EQ(test::max_abs_diff(f32.grads, f32b.grads), 0.0);

  const double e_logits = test::rel_err(bf.logits, f32.logits);
  const double e_grads = test::rel_err(bf.grads, f32.grads);
  // Per parameter: ||Δ|| / max(||g||, 1e-3·||g_all||). A gradient that is mathematically zero (the
  // LayerNorm bias in front of the PKM's train-mode BatchNorm) holds only rounding noise in either
  // mode, so it is judged against a thousandth of the whole gradient's norm instead of its own.
  const double g_all = l2(f32.grads);
  double e_param = 0;
  std::string worst;
  for (std::size_t i = 0; i < ps.params().size(); ++i) {
    const double e = l2_diff(bf.param_grads[i], f32.param_grads[i]) / std::max(l2(f32.param_grads[i]), 1e-3 * g_all);
    if (e > e_param) {
      e_param = e;
      worst = ps.params()[i]->name();
    }
  }
  std::printf("bf16 vs fp32: logits rel err %.3e, all grads rel err %.3e, worst parameter %.3e (%s)\n", e_logits,
              e_grads, e_param, worst.c_str());
  EXPECT_LT(e_logits, kLogitsTol);
  EXPECT_LT(e_grads, kGradsTol);
  EXPECT_LT(e_param, kParamGradTol) << worst;
  EXPECT_GT(e_logits, kMinEffect);
  EXPECT_GT(e_grads, kMinEffect);
}

TEST(Precision, DefaultIsFp32) {
  Context c;
  EXPECT_EQ(c.gemm_precision, Precision::fp32);
  EXPECT_EQ(parse_precision("fp32"), Precision::fp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_STREQ(precision_name(Precision::bf16), "bf16");
  EXPECT_THROW(parse_precision("fp16"), Error);
}

TEST(Precision, LinearGemmBf16MatchesRoundedOperands) {
  Backend& be = backend_for(Device::cpu);
  Tensor x = test::randn({5, 24}, 1), wt = test::randn({7, 24}, 2);
  Tensor y32 = linear_matmul(be, Precision::fp32, x, wt, false, true);
  EXPECT_EQ(test::max_abs_diff(y32, be.matmul(x, wt, false, true)), 0.0);  // fp32: exactly the plain GEMM
  Tensor y16 = linear_matmul(be, Precision::bf16, x, wt, false, true);
  EXPECT_EQ(y16.dtype(), DType::f32);
  // The same product of the bf16-rounded operands, in f32: equal up to f32 summation order.
  Tensor ref = be.matmul(be.cast(be.cast(x, DType::bf16), DType::f32), be.cast(be.cast(wt, DType::bf16), DType::f32),
                         false, true);
  EXPECT_LT(test::rel_err(y16, ref), 1e-6);
  EXPECT_GT(test::rel_err(y16, y32), kMinEffect);
  EXPECT_LT(test::rel_err(y16, y32), 4e-3);  // one GEMM: <= 2u (see the top of the file)
}

// Causal, factorised embedding (project_in / project_out), sequential blocks: every Linear kind
// except PKM.
TEST(Precision, Bf16LogitsAndGradsCloseCausalProjected) {
  LMConfig c = test::tiny_lm(true);
  c.emb_dim = 12;
  check_close_not_equal(c, /*training=*/false, /*pkm=*/false);
}

// Non-causal with GLU feed-forward and a PKM layer (to_queries), in training mode.
TEST(Precision, Bf16LogitsAndGradsCloseNonCausalPkm) {
  LMConfig c = test::tiny_lm(false);
  c.ff_glu = true;
  c.pkm_layers = {1};
  c.pkm_num_keys = 33;
  check_close_not_equal(c, /*training=*/true, /*pkm=*/true);
}

}  // namespace
}  // namespace sk
