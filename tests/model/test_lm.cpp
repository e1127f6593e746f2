// SinkhornLM: finite-difference gradient checks on small full-LM configurations, embedding
// factorisation (incl. D3 corrected), encoder/decoder context gradients, the Autopadder, and
// configuration validation.
#include <gtest/gtest.h>

#include "model/lm/autopad.h"
#include "model/lm/sinkhorn_lm.h"
#include "model_test_util.h"

namespace sk {
namespace {

// loss = Σ out ⊙ w (w fixed), so dout = w.
struct LMHarness {
  ParamSet ps;
  std::unique_ptr<SinkhornLM> lm;
  Tensor tokens, w, mask;
  Context c;
  LMHarness(const LMConfig& cfg, std::int64_t B, std::int64_t T, std::uint64_t seed, bool training = false) {
    lm = std::make_unique<SinkhornLM>(cfg, ps);
    ps.finalize(Device::cpu, seed);
    test::randomize(ps, seed + 1, 0.5f);
    c = test::cpu_context(training);
    tokens = test::rand_tokens(B, T, cfg.num_tokens, seed + 2);
    w = test::randn({B, T, lm->out_dim()}, seed + 3);
  }
  double loss() {
    LMStash st;
    auto v = c.backend().mul(lm->forward(tokens, st, c), w).to_vector<float>();
    double t = 0;
    for (float e : v) t += e;
    return t;
  }
  void grad() {
    ps.zero_grad();
    LMStash st;
    lm->forward(tokens, st, c);
    lm->backward(w, st, c);
  }
};

// Every parameter is set by test::randomize (not by the ParamSet's initialisation); PKM layers get
// constructed decision margins (BatchNorm weight 0.2: to_queries gradients ~4x above the loss's
// rounding noise at 0.05; the margins stay > 3, tests/model/test_pkm.cpp). The float32 noise of
// the loss is measured and allowed for by finite_difference_check, so these pass on any BLAS kernel
// (checked with every OpenBLAS core type an x86-64 CPU runs: tests/tools/blas_kernels.sh).
void gradcheck(const LMConfig& cfg, const Tensor& mask, double tol, bool training = false) {
  LMHarness h(cfg, 2, 32, 7, training);
  for (auto n : cfg.pkm_layers)
    test::pkm_margins(h.ps, "sinkhorn_transformer.layers.layers." + std::to_string(n - 1) + ".1.fn.", cfg.pkm_num_keys, 0.2f);
  h.c.input_mask = mask;
  h.c.recompute = training;  // keep BatchNorm running statistics fixed while probing
  h.grad();
  test::GradCheck r = test::finite_difference_check(h.ps, [&] { return h.loss(); }, 3, 1e-2, 3);
  EXPECT_LT(r.worst, tol) << r.worst_name;
  EXPECT_LT(r.aggregate(), 1e-2);
  EXPECT_LE(r.skipped * 5, r.checked) << "too many entries next to a decision boundary";
}

TEST(LMGradCheck, CausalSequential) { gradcheck(test::tiny_lm(true), Tensor(), 2e-2); }

TEST(LMGradCheck, CausalReversibleLocalHeadsMask) {
  LMConfig c = test::tiny_lm(true);
  c.reversible = true;
  c.n_local_attn_heads = 1;
  c.ff_chunks = 3;
  gradcheck(c, test::right_pad_mask(2, 32, {32, 21}), 2e-2);
}

TEST(LMGradCheck, NonCausalSortcutGluDimHead) {
  LMConfig c = test::tiny_lm(false);
  c.n_sortcut = 2;
  c.ff_glu = true;
  c.dim_head = 6;
  gradcheck(c, test::right_pad_mask(2, 32, {30, 32}), 2e-2);
}

TEST(LMGradCheck, EmbDimRezeroTied) {
  LMConfig c = test::tiny_lm(true);
  c.emb_dim = 10;
  c.use_rezero = true;
  c.weight_tie = true;
  gradcheck(c, Tensor(), 2e-2);
}

TEST(LMGradCheck, PkmTrainingMode) {
  LMConfig c = test::tiny_lm(false);
  c.pkm_layers = {1};
  c.pkm_num_keys = 33;
  gradcheck(c, Tensor(), 8e-2, /*training=*/true);
}

TEST(LM, ReturnEmbeddingsWithEmbDimIsDimWide) {  // D3 corrected
  LMConfig c = test::tiny_lm(false);
  c.emb_dim = 10;
  c.return_embeddings = true;
  ParamSet ps;
  SinkhornLM lm(c, ps, "enc.");
  EXPECT_EQ(lm.out_dim(), 16);
  EXPECT_EQ(ps.find("enc.norm.weight")->shape, (Shape{16}));
  EXPECT_NE(ps.find("enc.sinkhorn_transformer.project_in.weight"), nullptr);
  EXPECT_EQ(ps.find("enc.sinkhorn_transformer.project_out.weight"), nullptr);
  EXPECT_EQ(ps.find("enc.to_logits.weight"), nullptr);
  EXPECT_NE(ps.find("enc.sinkhorn_transformer.fn.layers.layers.0.0.fn.to_q.weight"), nullptr);
  ps.finalize(Device::cpu, 1);
  LMStash st;
  Tensor y = lm.forward(test::rand_tokens(2, 32, 23, 1), st, test::cpu_context());
  EXPECT_EQ(y.shape(), (Shape{2, 32, 16}));
}

TEST(LM, EncoderDecoderContextGradient) {
  LMConfig ec = test::tiny_lm(false);
  ec.return_embeddings = true;
  LMConfig dc = test::tiny_lm(true);
  dc.receives_context = true;
  dc.context_n_sortcut = 1;
  ParamSet ps;
  SinkhornLM enc(ec, ps, "encoder."), dec(dc, ps, "decoder.");
  ps.finalize(Device::cpu, 2);
  test::randomize(ps, 3, 0.5f);
  Context c = test::cpu_context();
  Tensor ct = test::rand_tokens(2, 32, 23, 4), t = test::rand_tokens(2, 32, 23, 5);
  Tensor cm = test::right_pad_mask(2, 32, {32, 24}), im = test::right_pad_mask(2, 32, {29, 32});
  Tensor w = test::randn({2, 32, 23}, 6);
  auto loss = [&]() {
    Context e = c;
    e.input_mask = cm;
    LMStash s1, s2;
    Tensor ctx = enc.forward(ct, s1, e);
    Context d = c;
    d.input_mask = im;
    d.context = ctx;
    d.context_mask = cm;
    auto v = c.backend().mul(dec.forward(t, s2, d), w).to_vector<float>();
    double s = 0;
    for (float x : v) s += x;
    return s;
  };
  {
    Context e = c;
    e.input_mask = cm;
    LMStash s1, s2;
    Tensor ctx = enc.forward(ct, s1, e);
    Tensor dctx = Tensor::zeros(ctx.shape(), DType::f32);
    Context d = c;
    d.input_mask = im;
    d.context = ctx;
    d.context_mask = cm;
    d.dcontext = &dctx;
    dec.forward(t, s2, d);
    dec.backward(w, s2, d);
    double n = 0;
    for (float x : dctx.to_vector<float>()) n += std::abs(x);
    EXPECT_GT(n, 0.0);
    enc.backward(dctx, s1, e);
  }
  // eps = 4e-2: the loss (Σ of 2·32·23 logits·w) carries ~4e-5 of float32 rounding, which at
  // eps = 1e-2 put the Richardson estimate of small-gradient entries (decoder LayerNorm biases, scale
  // ~0.2) 2.5 % off on some BLAS kernels; at 4e-2 the worst entry is ≤ 0.1 % off on every kernel and
  // only 1–2 of 172 entries cross a sort-net decision.
  test::GradCheck r = test::finite_difference_check(ps, loss, 2, 4e-2, 9);
  EXPECT_LT(r.worst, 2e-2) << r.worst_name;
  EXPECT_LT(r.aggregate(), 1e-2);
  EXPECT_LE(r.skipped * 5, r.checked) << "too many entries next to a decision boundary";
}

// The Autopadder equals running the LM on the hand-padded batch and cutting the output.
TEST(Autopadder, MatchesManualPaddingBothSides) {
  LMConfig cfg = test::tiny_lm(true);
  ParamSet ps;
  SinkhornLM lm(cfg, ps);
  ps.finalize(Device::cpu, 4);
  Context c = test::cpu_context();
  Backend& be = c.backend();
  const std::int64_t T = 27;
  Tensor tok = test::rand_tokens(2, T, 23, 3);
  for (bool left : {true, false}) {
    Autopadder ap(lm, left);
    EXPECT_EQ(ap.multiple(), 8);
    AutopadStash st;
    Tensor out = ap.forward(tok, st, c);
    EXPECT_EQ(out.shape(), (Shape{2, T, 23}));
    // Manual: pad 5 with id 0, mask false there.
    Tensor pt = be.pad(tok, 1, left ? 5 : 0, left ? 0 : 5, 0.f);
    std::vector<std::uint8_t> m(2 * 32, 1);
    for (int b = 0; b < 2; ++b)
      for (int j = 0; j < 5; ++j) m[static_cast<std::size_t>(b * 32 + (left ? j : 27 + j))] = 0;
    Context mc = c;
    mc.input_mask = Tensor::from_vector(m, {2, 32});
    LMStash ls;
    Tensor full = lm.forward(pt, ls, mc);
    EXPECT_LT(test::max_abs_diff(out, be.narrow(full, 1, left ? 5 : 0, T)), 1e-6);
    // Backward: same parameter gradients as the manual run with a zero-padded dout.
    Tensor w = test::randn({2, T, 23}, 11);
    ps.zero_grad();
    ap.backward(w, st, c);
    Tensor g1 = ps.flat_grads().clone();
    ps.zero_grad();
    lm.backward(be.pad(w, 1, left ? 5 : 0, left ? 0 : 5, 0.f), ls, mc);
    EXPECT_LT(test::rel_err(g1, ps.flat_grads()), 1e-6);
  }
}

TEST(Autopadder, PassesThroughWithoutInventingAMask) {
  LMConfig cfg = test::tiny_lm(false);
  ParamSet ps;
  SinkhornLM lm(cfg, ps);
  ps.finalize(Device::cpu, 4);
  Context c = test::cpu_context();
  Tensor tok = test::rand_tokens(1, 32, 23, 3);
  Padded p = autopad_inputs(tok, c, 8, 8, true);
  EXPECT_EQ(p.pad, 0);
  EXPECT_FALSE(p.ctx.input_mask.defined());
  Padded q = autopad_inputs(test::rand_tokens(1, 30, 23, 3), c, 8, 8, false);
  EXPECT_EQ(q.pad, 2);
  EXPECT_EQ(q.ctx.input_mask.to_vector<std::uint8_t>(),
            (std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  // Context: padded on the right to the context bucket size, with a mask only then.
  c.context = test::randn({1, 13, 16}, 1);
  Padded r = autopad_inputs(tok, c, 8, 8, true);
  EXPECT_EQ(r.context_pad, 3);
  EXPECT_EQ(r.ctx.context.shape(), (Shape{1, 16, 16}));
  ASSERT_TRUE(r.ctx.context_mask.defined());
  EXPECT_EQ(r.ctx.context_mask.to_vector<std::uint8_t>()[13], 0);
}

TEST(LM, RejectsBadLengthsAndInputs) {
  LMConfig cfg = test::tiny_lm(true);
  ParamSet ps;
  SinkhornLM lm(cfg, ps);
  ps.finalize(Device::cpu, 4);
  Context c = test::cpu_context();
  LMStash st;
  EXPECT_THROW(lm.forward(test::rand_tokens(1, 30, 23, 1), st, c), Error);  // not a bucket multiple
  EXPECT_THROW(lm.forward(test::rand_tokens(1, 40, 23, 1), st, c), Error);  // > max_seq_len
  c.context = test::randn({1, 32, 16}, 1);
  EXPECT_THROW(lm.forward(test::rand_tokens(1, 32, 23, 1), st, c), Error);  // context without receives_context
}

// validate_lm_config: one line naming where, the key, the value and the rule.
TEST(ValidateLMConfig, RejectsWithOneLineMessages) {
  auto expect_error = [](LMConfig c, const std::string& key) {
    try {
      validate_lm_config(c, "t.toml [model]");
      ADD_FAILURE() << "accepted a bad " << key;
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("t.toml [model]: " + key + " = "), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  LMConfig ok = test::tiny_lm(true);
  EXPECT_NO_THROW(validate_lm_config(ok, "x"));
  LMConfig c = ok;
  c.dim = 15;
  expect_error(c, "dim");  // not divisible by heads
  c = ok;
  c.n_sortcut = 1;
  expect_error(c, "n_sortcut");  // causal
  c = ok;
  c.kv_bucket_size = 16;
  expect_error(c, "kv_bucket_size");  // causal
  c = ok;
  c.n_local_attn_heads = 3;
  expect_error(c, "n_local_attn_heads");
  c = test::tiny_lm(false);
  c.use_simple_sort_net = true;
  c.kv_bucket_size = 16;
  expect_error(c, "kv_bucket_size");  // D11
  c = test::tiny_lm(false);
  c.n_sortcut = 5;
  expect_error(c, "n_sortcut");  // D4: 4 key buckets
  c = ok;
  c.receives_context = true;
  c.dim_head = 4;
  expect_error(c, "dim_head");
  c = ok;
  c.pkm_layers = {3};
  expect_error(c, "pkm_layers");
  c = ok;
  c.pkm_layers = {1};
  c.pkm_num_keys = 16;
  expect_error(c, "pkm_num_keys");
  c = ok;
  c.layer_dropout = 1.0;
  expect_error(c, "layer_dropout");
  c = ok;
  c.max_seq_len = 4;
  expect_error(c, "max_seq_len");
  c = test::tiny_lm(false);
  c.non_permutative = false;
  c.n_sortcut = 2;
  expect_error(c, "n_sortcut");  // D13
}

}  // namespace
}  // namespace sk

namespace sk {
namespace {

// SinkhornTransformer on continuous inputs, alone and behind the Autopadder (zero vectors padded
// along the sequence, the input gradient cut back).
TEST(SinkhornTransformer, ContinuousInputsAndAutopad) {
  LMConfig cfg = test::tiny_lm(false);
  ParamSet ps;
  SinkhornTransformer tr(cfg, ps, "net.");
  EXPECT_NE(ps.find("net.layers.layers.0.0.fn.to_q.weight"), nullptr);
  ps.finalize(Device::cpu, 2);
  Context c = test::cpu_context();
  Backend& be = c.backend();
  Tensor x = test::randn({2, 29, 16}, 1);
  for (bool left : {false, true}) {
    Autopadder ap(tr, left);
    AutopadStash st;
    Tensor y = ap.forward(x, st, c);
    EXPECT_EQ(y.shape(), (Shape{2, 29, 16}));
    // Same as the hand-padded run with the padded positions masked.
    Tensor xp = be.pad(x, 1, left ? 3 : 0, left ? 0 : 3, 0.f);
    std::vector<std::uint8_t> m(64, 1);
    for (int b = 0; b < 2; ++b)
      for (int j = 0; j < 3; ++j) m[static_cast<std::size_t>(b * 32 + (left ? j : 29 + j))] = 0;
    Context mc = c;
    mc.input_mask = Tensor::from_vector(m, {2, 32});
    TransformerStash ts;
    Tensor yp = tr.forward(xp, ts, mc);
    EXPECT_LT(test::max_abs_diff(y, be.narrow(yp, 1, left ? 3 : 0, 29)), 1e-6);
    Tensor dy = test::randn({2, 29, 16}, 3);
    Tensor dx = ap.backward(dy, st, c);
    EXPECT_EQ(dx.shape(), x.shape());
    Tensor dxp = tr.backward(be.pad(dy, 1, left ? 3 : 0, left ? 0 : 3, 0.f), ts, mc);
    EXPECT_LT(test::max_abs_diff(dx, be.narrow(dxp, 1, left ? 3 : 0, 29)), 1e-6);
  }
  TransformerStash ts;
  EXPECT_THROW(tr.forward(test::randn({2, 30, 16}, 1), ts, c), Error);  // needs the Autopadder
}

}  // namespace
}  // namespace sk

namespace sk {
namespace {

// A context that is not a multiple of context_bucket_size is padded with zero vectors (masked) and
// its gradient cut back to the caller's length.
TEST(Autopadder, PadsTheContextAndCutsItsGradient) {
  LMConfig dc = test::tiny_lm(true);
  dc.receives_context = true;
  dc.context_n_sortcut = 1;
  ParamSet ps;
  SinkhornLM dec(dc, ps);
  ps.finalize(Device::cpu, 2);
  test::randomize(ps, 3, 0.4f);
  Context c = test::cpu_context();
  Backend& be = c.backend();
  Tensor tok = test::rand_tokens(2, 32, 23, 1);
  c.context = test::randn({2, 29, 16}, 2);
  Tensor dctx = Tensor::zeros({2, 29, 16}, DType::f32);
  c.dcontext = &dctx;
  Autopadder ap(dec, true);
  AutopadStash st;
  Tensor y = ap.forward(tok, st, c);
  Tensor w = test::randn(y.shape(), 4);
  ap.backward(w, st, c);
  // Manual.
  Context mc = test::cpu_context();
  mc.context = be.pad(c.context, 1, 0, 3, 0.f);
  mc.context_mask = test::right_pad_mask(2, 32, {29, 29});
  Tensor dfull = Tensor::zeros({2, 32, 16}, DType::f32);
  mc.dcontext = &dfull;
  LMStash ls;
  Tensor ym = dec.forward(tok, ls, mc);
  EXPECT_LT(test::max_abs_diff(y, ym), 1e-6);
  dec.backward(w, ls, mc);
  EXPECT_LT(test::max_abs_diff(dctx, be.narrow(dfull, 1, 0, 29)), 1e-6);
  double n = 0;
  for (float v : dctx.to_vector<float>()) n += std::abs(v);
  EXPECT_GT(n, 0.0);
}

}  // namespace
}  // namespace sk
