// test_attention_fd.cpp — SinkhornSelfAttention backward against central finite differences of its
// own forward (CPU, float32), for every variant; differentiable top-k and gumbel-sinkhorn on their
// own; dropout determinism; rejected configurations (model-spec §20 defects).
//
// Finite differences: L = Σ y·G (G fixed, accumulated in double); on a strided sample of the
// coordinates of x, the context and every parameter, dL/dθ ≈ (4·D(h/2) − D(h)) / 3 with the central
// difference D(h) = (L(θ+h) − L(θ−h)) / 2h and h = 2e-2 (Richardson: the h² truncation term
// cancels, which matters for the steep log(R + 1e-6) of gumbel-sinkhorn).
// Error budget: y has float32 rounding ~1e-7 relative, so L carries ~1e-6 absolute noise and the
// extrapolated quotient ~(4/3)·1e-6/1e-2 ≈ 1.3e-4 per coordinate;
// the remaining h⁴ truncation is negligible. Against gradient vectors of norm O(0.1 … 10) this
// stays below ~1e-3 relative; the check uses 5e-3 (a wrong term in a backward gives O(1) errors).
// A perturbation that changes a discrete decision (a chosen bucket, a ReLU sign in a sort net, the
// arg-max of a soft permutation) makes L non-smooth: the step is then retried 4x and 16x smaller
// (noisier, ~2e-3 per coordinate at 1.25e-3), and a coordinate still crossing is skipped (at
// most a quarter of them may be).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/layers/attention.h"

namespace sk {
namespace {

Context make_ctx(bool training = false, std::uint64_t step = 0) {
  Context c;
  c.be = &backend_for(Device::cpu);
  c.training = training;
  c.seed = 1234;
  c.step = step;
  c.micro = 7;
  return c;
}

Tensor randn(const Shape& s, std::uint64_t seed, float scale = 1.f, float shift = 0.f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
  for (auto& x : v) x = nd(g) + shift;
  return Tensor::from_vector(v, s);
}

Tensor mask_both_ends(std::int64_t B, std::int64_t T) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(B * T), 1);
  for (std::int64_t t = 0; t < 3; ++t) m[static_cast<std::size_t>(t)] = 0;                  // row 0: start
  for (std::int64_t t = T - 2; t < T; ++t) m[static_cast<std::size_t>(t)] = 0;              // row 0: end
  if (B > 1)
    for (std::int64_t t = T - 5; t < T; ++t) m[static_cast<std::size_t>(T + t)] = 0;        // row 1: end
  return Tensor::from_vector(m, {B, T});
}

double dot_double(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += double(x[i]) * double(y[i]);
  return s;
}

struct FdSetup {
  AttentionConfig cfg;
  std::int64_t B = 2, T = 16, Tc = 0;
  bool mask = true;
  bool training = false;
  std::uint64_t seed = 1;
  float qk_scale = 3.f;  // sharpen the attention (default init gives near-uniform weights)
  float linear_h = 2e-2f;  // finite-difference step for the simple sort nets' `linear`
};

class Harness {
 public:
  explicit Harness(const FdSetup& s) : su_(s) {
    layer_ = std::make_unique<SinkhornSelfAttention>(s.cfg, ps_, "", 5);
    ps_.finalize(Device::cpu, s.seed);
    for (const char* n : {"to_q.weight", "to_kv.weight"}) {
      Parameter* p = ps_.find(n);
      if (!p) continue;
      float* d = p->value.data<float>();
      for (std::int64_t i = 0; i < p->value.numel(); ++i) d[i] *= s.qk_scale;
    }
    c_ = make_ctx(s.training, 3);
    x_ = randn({s.B, s.T, s.cfg.dim}, s.seed + 10);
    G_ = randn({s.B, s.T, s.cfg.dim}, s.seed + 20);
    if (s.mask) c_.input_mask = mask_both_ends(s.B, s.T);
    if (s.cfg.is_context) {
      ctx_ = randn({s.B, s.Tc, s.cfg.dim}, s.seed + 30);
      c_.context = ctx_;
      if (s.mask) c_.context_mask = mask_both_ends(s.B, s.Tc);
    }
  }

  // L = Σ y·G and the decisions made on the way.
  double loss(std::vector<std::int64_t>* decisions) {
    Stash s;
    Tensor y = layer_->forward(x_, s, c_);
    if (decisions) *decisions = decisions_of(s.get<AttentionStash>());
    return dot_double(y, G_);
  }

  // Chosen buckets (top-k; a soft permutation has none), ReLU signs of the sort nets.
  static std::vector<std::int64_t> decisions_of(AttentionStash& st) {
    std::vector<std::int64_t> d;
    const SinkhornStash& k = st.sink;
    if (k.sel.idx.defined()) {
      auto v = k.sel.idx.to_vector<std::int64_t>();
      d.insert(d.end(), v.begin(), v.end());
    }
    for (const Tensor* t : {&k.sort.r_pre, &k.r_sel}) {
      if (!t->defined()) continue;
      for (float f : t->to_vector<float>()) d.push_back(f > 0.f ? 1 : 0);
    }
    return d;
  }

  // Analytic gradients: dx, dcontext, and the parameter grads (zeroed first).
  void analytic() {
    ps_.zero_grad();
    Stash s;
    layer_->forward(x_, s, c_);
    dctx_ = Tensor();
    c_.dcontext = su_.cfg.is_context ? &dctx_ : nullptr;
    dx_ = layer_->backward(G_, s, c_);
    c_.dcontext = nullptr;
  }

  struct FdResult {
    double rel = 0;
    int checked = 0, skipped = 0;
  };
  // Richardson-extrapolated central differences, (4·D(h/2) − D(h)) / 3, on a strided sample of
  // `target` (a CPU tensor the forward reads). When a step crosses a decision — a tracked one
  // (chosen buckets, ReLU signs), or an untracked kink, seen as D(h) and D(h/2) disagreeing by more
  // than a smooth function allows (1 % here; smooth coordinates agree to ~1e-5) — the step is
  // retried 4x smaller; a coordinate whose smallest step still crosses one is skipped.
  FdResult fd(Tensor& target, const Tensor& grad, float h0 = 2e-2f, int samples = 24) {
    std::vector<std::int64_t> base;
    loss(&base);
    FdResult r;
    float* d = target.data<float>();
    auto g = grad.to_vector<float>();
    std::int64_t n = target.numel(), stride = std::max<std::int64_t>(1, n / samples);
    auto central = [&](std::int64_t i, float h, double& out) {
      float orig = d[i];
      std::vector<std::int64_t> dp, dm;
      d[i] = orig + h;
      double lp = loss(&dp);
      d[i] = orig - h;
      double lm = loss(&dm);
      d[i] = orig;
      out = (lp - lm) / (2.0 * double(h));
      return dp == base && dm == base;
    };
    double num = 0, den = 0;
    for (std::int64_t i = (stride / 2) % std::max<std::int64_t>(n, 1); i < n; i += stride) {
      bool ok = false;
      double f = 0;
      for (float h : {h0, h0 / 4, h0 / 16}) {
        double f1 = 0, f2 = 0;
        if (central(i, h, f1) && central(i, h / 2, f2) && std::abs(f1 - f2) <= 1e-2 * std::max(1.0, std::abs(f2))) {
          f = (4.0 * f2 - f1) / 3.0;
          ok = true;
          break;
        }
      }
      if (!ok) {
        ++r.skipped;
        continue;
      }
      double a = g[static_cast<std::size_t>(i)];
      num += (f - a) * (f - a);
      den += a * a;
      ++r.checked;
    }
    r.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    return r;
  }

  // Checks x, context and every parameter; returns the worst relative error.
  double check_all(double tol = 5e-3) {
    analytic();
    double worst = 0;
    auto one = [&](const std::string& what, Tensor& t, const Tensor& g) {
      FdResult r = fd(t, g, what.find("sort_net.linear") != std::string::npos ? su_.linear_h : 2e-2f);
      EXPECT_GT(r.checked, 0) << what;
      EXPECT_LE(r.skipped, (r.checked + r.skipped) / 4) << what << ": too many coordinates cross a decision";
      EXPECT_LT(r.rel, tol) << what << " (" << r.checked << " coordinates, " << r.skipped << " skipped)";
      worst = std::max(worst, r.rel);
      if (std::getenv("SK_FD_VERBOSE"))
        std::printf("    %-40s rel %.2e (%d checked, %d skipped)\n", what.c_str(), r.rel, r.checked, r.skipped);
    };
    one("x", x_, dx_);
    if (su_.cfg.is_context) one("context", ctx_, dctx_);
    for (const auto& p : ps_.params()) {
      if (p->value.numel() == 0) continue;
      one(p->name(), p->value, p->grad);
    }
    return worst;
  }

  SinkhornSelfAttention& layer() { return *layer_; }
  ParamSet& params() { return ps_; }
  Context& ctx() { return c_; }
  Tensor& x() { return x_; }

 private:
  FdSetup su_;
  ParamSet ps_;
  std::unique_ptr<SinkhornSelfAttention> layer_;
  Context c_;
  Tensor x_, G_, ctx_, dx_, dctx_;
};

AttentionConfig base_cfg(std::int64_t dim = 8, std::int64_t heads = 2) {
  AttentionConfig c;
  c.dim = dim;
  c.heads = heads;
  c.dim_head = 0;
  c.bucket_size = 4;
  c.kv_bucket_size = 0;
  c.max_seq_len = 16;
  c.n_top_buckets = 2;
  return c;
}

void run_fd(const FdSetup& s, const char* what) {
  Harness h(s);
  double worst = h.check_all();
  std::printf("[ attention fd ] %-36s worst relative error %.2e\n", what, worst);
}

TEST(AttentionFD, NonCausalAttentionSortNet) {
  FdSetup s;
  s.cfg = base_cfg();
  run_fd(s, "non-causal attention sort net");
}

TEST(AttentionFD, NonCausalSortcut) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.n_sortcut = 2;
  run_fd(s, "non-causal sortcut 2");
}

TEST(AttentionFD, NonCausalKvBucketDimHead) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.dim_head = 6;
  s.cfg.kv_bucket_size = 8;
  s.T = 32;
  s.cfg.max_seq_len = 32;
  run_fd(s, "kv_bucket_size 8 != bucket_size 4, dh 6");
}

TEST(AttentionFD, NonCausalSimpleSortNetTop2) {  // D5: correct gradient on a copy
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.use_simple_sort_net = true;
  s.cfg.n_top_buckets = 2;
  run_fd(s, "non-causal simple sort net, n_top 2");
}

TEST(AttentionFD, NonCausalLocalHeads) {
  FdSetup s;
  s.cfg = base_cfg(12, 3);
  s.cfg.n_local_attn_heads = 2;
  run_fd(s, "non-causal, 2 local + 1 sinkhorn heads");
}

TEST(AttentionFD, CausalAttentionSortNetWithLocal) {
  FdSetup s;
  s.cfg = base_cfg(12, 3);
  s.cfg.causal = true;
  s.cfg.n_local_attn_heads = 1;
  s.T = 20;
  s.cfg.max_seq_len = 20;
  run_fd(s, "causal attention sort net + local head");
}

TEST(AttentionFD, CausalAttentionTop1NoMask) {
  FdSetup s;
  s.cfg = base_cfg(12, 3);
  s.cfg.causal = true;
  s.cfg.n_top_buckets = 1;
  s.mask = false;
  run_fd(s, "causal attention sort net, n_top 1");
}

TEST(AttentionFD, CausalSimpleSortNet) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.causal = true;
  s.cfg.use_simple_sort_net = true;
  s.cfg.max_seq_len = 24;  // T = 16 < max_seq_len: trailing columns unused
  run_fd(s, "causal simple sort net");
}

TEST(AttentionFD, CausalSimpleSortNetFewBuckets) {  // D12: n_top clamped for nulls and columns alike
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.causal = true;
  s.cfg.use_simple_sort_net = true;
  s.cfg.n_top_buckets = 3;
  s.T = 8;  // 2 buckets < n_top_buckets
  run_fd(s, "causal simple sort net, 2 buckets, n_top 3");
}

TEST(AttentionFD, ContextLayer) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.is_context = true;
  s.cfg.causal = true;  // ignored by context layers
  s.cfg.n_local_attn_heads = 1;  // ignored by context layers
  s.Tc = 16;
  run_fd(s, "context layer (own bucket append)");
}

TEST(AttentionFD, ContextLayerSortcut) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.is_context = true;
  s.cfg.kv_bucket_size = 8;
  s.cfg.n_sortcut = 2;
  s.Tc = 24;
  run_fd(s, "context layer, sortcut, Tc 24");
}

TEST(AttentionFD, GumbelSinkhornAttentionSortNet) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  s.cfg.sinkhorn_iter = 5;
  run_fd(s, "gumbel-sinkhorn, attention sort net");
}

TEST(AttentionFD, GumbelSinkhornSimpleSortNetNoMask) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  s.cfg.use_simple_sort_net = true;
  s.mask = false;
  // log(R + 1e-6) is steep for small R > 0, and `linear` multiplies large bucket sums: a smaller
  // step for it keeps its differences off the truncation bound (noise ~1e-6/2e-3 per coordinate).
  s.linear_h = 2e-3f;
  run_fd(s, "gumbel-sinkhorn, simple sort net");
}

TEST(AttentionFD, GumbelSinkhornSortcut1) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  s.cfg.n_sortcut = 1;
  run_fd(s, "gumbel-sinkhorn, sortcut 1");
}

TEST(AttentionFD, DropoutFixedKey) {  // training mode: masks redrawn from the same keys in backward
  FdSetup s;
  s.cfg = base_cfg(12, 3);
  s.cfg.causal = true;
  s.cfg.n_local_attn_heads = 1;
  s.cfg.attn_dropout = 0.3f;
  s.cfg.dropout = 0.2f;
  s.training = true;
  run_fd(s, "causal + local, attention/output dropout");
}

// ---------------------------------------------------------------------------------------------
TEST(AttentionDropout, SameKeySameMasksOtherStepOtherMasks) {
  FdSetup s;
  s.cfg = base_cfg(12, 3);
  s.cfg.n_local_attn_heads = 1;
  s.cfg.attn_dropout = 0.3f;
  s.cfg.dropout = 0.2f;
  s.training = true;
  Harness h(s);
  auto run = [&](const Context& c) {
    Stash st;
    return h.layer().forward(h.x(), st, c).to_vector<float>();
  };
  Context c1 = make_ctx(true, 3), c2 = make_ctx(true, 4), ce = make_ctx(false, 3), ce2 = make_ctx(false, 9);
  c1.input_mask = c2.input_mask = ce.input_mask = ce2.input_mask = mask_both_ends(2, 16);
  auto a = run(c1), b = run(c1), d = run(c2), e = run(ce), f = run(ce2);
  EXPECT_EQ(a, b) << "same key must give the same dropout masks";
  EXPECT_NE(a, d) << "another step must draw other masks";
  EXPECT_NE(a, e) << "training dropout must change the output";
  EXPECT_EQ(e, f) << "eval mode must not depend on the step";
  // Each site separately: only attention dropout, only output dropout.
  for (int which = 0; which < 2; ++which) {
    FdSetup s2 = s;
    s2.cfg.attn_dropout = which == 0 ? 0.3f : 0.f;
    s2.cfg.dropout = which == 1 ? 0.2f : 0.f;
    Harness h2(s2);
    Stash st1, st2, st3;
    auto y1 = h2.layer().forward(h2.x(), st1, c1).to_vector<float>();
    auto y2 = h2.layer().forward(h2.x(), st2, c1).to_vector<float>();
    auto y3 = h2.layer().forward(h2.x(), st3, c2).to_vector<float>();
    EXPECT_EQ(y1, y2) << "site " << which;
    EXPECT_NE(y1, y3) << "site " << which;
  }
}

// D14 corrected: with masks, the gumbel-sinkhorn mixture mixes only real keys/values.
// Input feature `f` of x is routed to one projection only (the others get a zero column), so changing
// x[b, t, f] at padded positions changes exactly the keys or exactly the values there.
void route_feature(Harness& h, std::int64_t f, bool to_keys) {
  ParamSet& ps = h.params();
  Tensor& wq = ps.find("to_q.weight")->value;
  Tensor& wkv = ps.find("to_kv.weight")->value;
  std::int64_t D = wq.dim(1), HD = wq.dim(0);
  for (std::int64_t r = 0; r < HD; ++r) wq.data<float>()[r * D + f] = 0.f;
  for (std::int64_t r = 0; r < 2 * HD; ++r) {
    bool key_row = r < HD;
    if (key_row != to_keys) wkv.data<float>()[r * D + f] = 0.f;
    else wkv.data<float>()[r * D + f] = 0.5f;  // a clearly non-zero route
  }
}

TEST(AttentionD14, PaddedKeysAndValuesDoNotReachRealQueries) {
  for (bool keys : {false, true}) {
    FdSetup s;
    s.cfg = base_cfg(12, 2);
    s.cfg.dim_head = 4;
    s.cfg.non_permutative = false;
    Harness h(s);
    const std::int64_t B = s.B, T = s.T, D = s.cfg.dim, f = D - 1, bs = s.cfg.bucket_size;
    route_feature(h, f, keys);
    auto m = h.ctx().input_mask.to_vector<std::uint8_t>();
    auto run = [&] {
      Stash st;
      auto y = h.layer().forward(h.x(), st, h.ctx()).to_vector<float>();
      const Tensor& kk = st.get<AttentionStash>().sink.attend.k_keep;
      EXPECT_TRUE(kk.defined());
      for (float v : kk.to_vector<float>()) EXPECT_TRUE(v == 0.f || v == 1.f) << "key keep factor " << v;
      return y;
    };
    auto y0 = run();
    // Values: any change at padded positions. Keys: +δ/−δ pairs inside one bucket, so the bucket
    // means the sort net reads (and hence the soft permutation) stay the same up to rounding.
    float* xd = h.x().data<float>();
    std::mt19937_64 g(77);
    std::normal_distribution<float> nd(0.f, 5.f);
    int changed = 0;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t u = 0; u < T / bs; ++u) {
        std::vector<std::int64_t> pad;
        for (std::int64_t t = u * bs; t < (u + 1) * bs; ++t)
          if (!m[static_cast<std::size_t>(b * T + t)]) pad.push_back(t);
        for (std::size_t i = 0; i < pad.size(); ++i) {
          if (keys && (i % 2 == 1 || i + 1 == pad.size())) continue;
          float delta = nd(g);
          xd[(b * T + pad[i]) * D + f] += delta;
          if (keys) xd[(b * T + pad[i + 1]) * D + f] -= delta;
          changed += keys ? 2 : 1;
        }
      }
    ASSERT_GT(changed, 3);
    auto y1 = run();
    double worst = 0, pad_change = 0;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t e = 0; e < D; ++e) {
          std::size_t i = static_cast<std::size_t>((b * T + t) * D + e);
          double diff = std::fabs(double(y1[i]) - double(y0[i]));
          if (m[static_cast<std::size_t>(b * T + t)]) worst = std::max(worst, diff);
          else pad_change = std::max(pad_change, diff);
        }
    EXPECT_LT(worst, 1e-5) << (keys ? "padded keys" : "padded values") << " reached a real query";
    // Padded queries attend uniformly to all their assembled values (own bucket included), so the
    // perturbation did reach the layer.
    if (!keys) {
      EXPECT_GT(pad_change, 1e-3);
    }
  }
}

TEST(AttentionD14, GumbelMaskedFDNoOwnBucket) {  // nb != nkb: every key comes from the mixture
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  s.cfg.kv_bucket_size = 8;
  run_fd(s, "gumbel-sinkhorn, masked, kv bucket 8");
}

TEST(AttentionD14, GumbelMaskedFDContextLayer) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  s.cfg.is_context = true;
  s.Tc = 16;
  run_fd(s, "gumbel-sinkhorn, context layer, context mask");
}

TEST(AttentionD14, GumbelMaskedFDSortcut1) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  s.cfg.n_sortcut = 1;
  s.cfg.kv_bucket_size = 8;
  run_fd(s, "gumbel-sinkhorn, masked, sortcut 1, kv bucket 8");
}

TEST(AttentionGumbel, NoiseKeyedByContext) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.non_permutative = false;
  Harness h(s);
  auto run = [&](const Context& c) {
    Stash st;
    return h.layer().forward(h.x(), st, c).to_vector<float>();
  };
  Context c1 = make_ctx(false, 3), c2 = make_ctx(false, 4);
  EXPECT_EQ(run(c1), run(c1)) << "recompute must redraw the same gumbel noise";
  EXPECT_NE(run(c1), run(c2)) << "another step must draw other gumbel noise";
}

// ---------------------------------------------------------------------------------------------
// The selection operators on their own.
TEST(AttentionTopK, MatchesDefinitionAndFD) {
  Backend& be = backend_for(Device::cpu);
  const std::int64_t N = 2, rows = 3, m = 5, k = 3;
  const float tau = 0.75f;
  Tensor x = randn({N, rows, m}, 77, 1.5f);
  // Overwrite one entry with M (never chosen, zero gradient).
  x.data<float>()[4] = -attn::kFltMax;
  TopKStash st;
  attn::Selection sel = differentiable_topk(be, x, k, tau, st);
  auto xs = x.to_vector<float>();
  auto idx = sel.idx.to_vector<std::int64_t>();
  auto val = sel.val.to_vector<float>();
  for (std::int64_t r = 0; r < N * rows; ++r) {  // definition of §10 in double
    std::vector<double> X(xs.begin() + r * m, xs.begin() + (r + 1) * m);
    for (std::int64_t t = 0; t < k; ++t) {
      double mx = -1e300;
      std::int64_t j = 0;
      for (std::int64_t c = 0; c < m; ++c)
        if (X[static_cast<std::size_t>(c)] > mx) mx = X[static_cast<std::size_t>(c)], j = c;
      double z = 0;
      for (double v : X) z += v > -1e30 ? std::exp((v - mx) / tau) : 0.0;
      EXPECT_EQ(idx[static_cast<std::size_t>(r * k + t)], j);
      EXPECT_NEAR(val[static_cast<std::size_t>(r * k + t)], 1.0 / z, 1e-6);
      X[static_cast<std::size_t>(j)] = -1e300;
    }
  }
  Tensor g = randn({N, rows * k}, 78);
  Tensor dx = differentiable_topk_backward(be, g, st);
  EXPECT_EQ(dx.to_vector<float>()[4], 0.f) << "an overwritten entry must get no gradient";
  auto gd = dx.to_vector<float>();
  double num = 0, den = 0;
  float* d = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    if (i == 4) continue;
    float o = d[i];
    const float eps = 1e-2f;
    TopKStash s1, s2;
    d[i] = o + eps;
    attn::Selection sp = differentiable_topk(be, x, k, tau, s1);
    d[i] = o - eps;
    attn::Selection sm = differentiable_topk(be, x, k, tau, s2);
    d[i] = o;
    ASSERT_EQ(sp.idx.to_vector<std::int64_t>(), idx);
    ASSERT_EQ(sm.idx.to_vector<std::int64_t>(), idx);
    double f = (dot_double(sp.val, g) - dot_double(sm.val, g)) / (2.0 * eps);
    num += (f - gd[static_cast<std::size_t>(i)]) * (f - gd[static_cast<std::size_t>(i)]);
    den += double(gd[static_cast<std::size_t>(i)]) * gd[static_cast<std::size_t>(i)];
  }
  EXPECT_LT(std::sqrt(num / den), 5e-3);
}

TEST(AttentionGumbel, DoublyStochasticAndFD) {
  Backend& be = backend_for(Device::cpu);
  const std::int64_t N = 2, n = 6;
  std::mt19937_64 gen(5);
  std::uniform_real_distribution<float> ud(0.5f, 1.5f);
  std::vector<float> rv(static_cast<std::size_t>(N * n * n));
  for (auto& v : rv) v = ud(gen);
  Tensor r = Tensor::from_vector(rv, {N, n, n});
  RngKey key{42, 7};
  // Enough iterations: rows and columns sum to one.
  GumbelStash s50;
  attn::Selection sel = gumbel_sinkhorn(be, r, 50, 0.75f, key, s50);
  auto P = sel.P.to_vector<float>();
  for (std::int64_t b = 0; b < N; ++b)
    for (std::int64_t i = 0; i < n; ++i) {
      double rs = 0, cs = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        rs += P[static_cast<std::size_t>((b * n + i) * n + j)];
        cs += P[static_cast<std::size_t>((b * n + j) * n + i)];
      }
      EXPECT_NEAR(rs, 1.0, 1e-3) << "row " << i;
      EXPECT_NEAR(cs, 1.0, 1e-5) << "column " << i;
    }
  // Few iterations: gradient by finite differences with the same (fixed) noise key.
  Tensor G = randn({N, n, n}, 9);
  GumbelStash s;
  gumbel_sinkhorn(be, r, 3, 0.75f, key, s);
  auto gd = gumbel_sinkhorn_backward(be, G, s).to_vector<float>();
  float* d = r.data<float>();
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < r.numel(); ++i) {
    float o = d[i];
    const float eps = 1e-2f;
    GumbelStash sp, sm;
    d[i] = o + eps;
    double lp = dot_double(gumbel_sinkhorn(be, r, 3, 0.75f, key, sp).P, G);
    d[i] = o - eps;
    double lm = dot_double(gumbel_sinkhorn(be, r, 3, 0.75f, key, sm).P, G);
    d[i] = o;
    double f = (lp - lm) / (2.0 * eps);
    num += (f - gd[static_cast<std::size_t>(i)]) * (f - gd[static_cast<std::size_t>(i)]);
    den += double(gd[static_cast<std::size_t>(i)]) * gd[static_cast<std::size_t>(i)];
  }
  EXPECT_LT(std::sqrt(num / den), 5e-3);
}

// ---------------------------------------------------------------------------------------------
// Rejected configurations name the argument.
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no sk::Error (expected one mentioning '" << needle << "')";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(AttentionConfigErrors, RejectedCombinations) {
  auto build = [](AttentionConfig c) {
    ParamSet ps;
    SinkhornSelfAttention l(c, ps, "p.", 0);
  };
  AttentionConfig c = base_cfg();
  c.use_simple_sort_net = true;
  c.kv_bucket_size = 8;
  expect_error([&] { build(c); }, "kv_bucket_size");  // D11
  c = base_cfg();
  c.use_simple_sort_net = true;
  c.n_sortcut = 1;
  expect_error([&] { build(c); }, "n_sortcut");  // D11
  c = base_cfg();
  c.non_permutative = false;
  c.n_sortcut = 2;
  expect_error([&] { build(c); }, "n_sortcut");  // D13
  c = base_cfg();
  c.causal = true;
  c.n_sortcut = 1;
  expect_error([&] { build(c); }, "n_sortcut");
  c = base_cfg();
  c.causal = true;
  c.kv_bucket_size = 8;
  expect_error([&] { build(c); }, "kv_bucket_size");
  c = base_cfg();
  c.n_local_attn_heads = 3;
  expect_error([&] { build(c); }, "n_local_attn_heads");
  c = base_cfg();
  c.is_context = true;
  c.dim_head = 6;
  expect_error([&] { build(c); }, "dim_head");
  c = base_cfg(10, 3);
  expect_error([&] { build(c); }, "heads");
}

TEST(AttentionConfigErrors, RejectedInputs) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.n_sortcut = 5;  // 16 / 4 = 4 key buckets < 5 (D4)
  Harness h(s);
  expect_error([&] { h.loss(nullptr); }, "n_sortcut");
  FdSetup s2;
  s2.cfg = base_cfg();
  Harness h2(s2);
  Tensor bad = randn({2, 10, 8}, 3);
  expect_error([&] {
    Stash st;
    Context c = make_ctx();
    h2.layer().forward(bad, st, c);
  }, "bucket_size");
  FdSetup s3;
  s3.cfg = base_cfg();
  s3.cfg.use_simple_sort_net = true;
  s3.T = 8;  // != max_seq_len 16
  Harness h3(s3);
  expect_error([&] { h3.loss(nullptr); }, "max_seq_len");
  FdSetup s4;
  s4.cfg = base_cfg();
  s4.cfg.is_context = true;
  s4.Tc = 16;
  Harness h4(s4);
  h4.ctx().context = Tensor();
  expect_error([&] { h4.loss(nullptr); }, "context");
  // A batch of no rows (a 0-row reference batch crashed with SIGFPE in the bucket grouping), for
  // causal, non-causal and context layers; and a context of no positions.
  for (bool causal : {false, true}) {
    FdSetup s5;
    s5.cfg = base_cfg();
    s5.cfg.causal = causal;
    Harness h5(s5);
    expect_error([&] {
      Stash st;
      Context c = make_ctx();
      h5.layer().forward(Tensor::zeros({0, 16, 8}, DType::f32), st, c);
    }, "no rows");
  }
  FdSetup s6;
  s6.cfg = base_cfg();
  s6.cfg.is_context = true;
  s6.Tc = 16;
  Harness h6(s6);
  h6.ctx().context = Tensor::zeros({2, 0, 8}, DType::f32);
  h6.ctx().context_mask = Tensor();
  expect_error([&] { h6.loss(nullptr); }, "Tc >= 1");
}

// Parameter names, shapes and initialisation (model-spec §6.7, §17).
TEST(AttentionParams, NamesShapesInit) {
  AttentionConfig c = base_cfg();
  c.causal = true;
  c.use_simple_sort_net = true;
  c.n_local_attn_heads = 2;  // Hs = 0: the null tensors and the sort-net matrix still exist
  ParamSet ps;
  SinkhornSelfAttention l(c, ps, "A.", 0);
  std::vector<std::pair<std::string, Shape>> want = {
      {"A.to_q.weight", {8, 8}},           {"A.to_kv.weight", {16, 8}},
      {"A.to_out.weight", {8, 8}},         {"A.to_out.bias", {8}},
      {"A.sinkhorn_attention.null_keys", {0, 1, 4}}, {"A.sinkhorn_attention.null_values", {0, 1, 4}},
      {"A.sinkhorn_attention.sort_net.linear", {1, 0, 8, 16 / 4 + 2}}};
  ASSERT_EQ(ps.params().size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ps.params()[i]->name(), want[i].first);
    EXPECT_EQ(ps.params()[i]->shape, want[i].second) << want[i].first;
  }
  EXPECT_EQ(ps.find("A.to_q.weight")->init.kind, Init::uniform);
  EXPECT_FLOAT_EQ(ps.find("A.to_q.weight")->init.a, 1.f / std::sqrt(8.f));
  EXPECT_EQ(ps.find("A.sinkhorn_attention.null_keys")->init.kind, Init::normal);

  AttentionConfig cc = base_cfg();
  cc.is_context = true;
  ParamSet ps2;
  SinkhornSelfAttention l2(cc, ps2, "C.", 0);
  EXPECT_EQ(ps2.params().size(), 3u);
  EXPECT_EQ(ps2.find("C.to_kv.weight"), nullptr);
}

// With all heads local and causal, a finalized layer still runs forward and backward.
TEST(AttentionFD, AllLocalCausal) {
  FdSetup s;
  s.cfg = base_cfg();
  s.cfg.causal = true;
  s.cfg.n_local_attn_heads = 2;
  run_fd(s, "all heads local, causal");
}

}  // namespace
}  // namespace sk
