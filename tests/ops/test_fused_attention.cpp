// test_fused_attention.cpp — Backend::attention / attention_backward (backend.h, "fused attention"):
// forward and backward against a float64 naive reference of the spec, and finite differences;
// structural masks shared by groups (g % Gm), query/key factors, fully masked rows (uniform, zero
// gradient), dropout (same Philox stream as Backend::dropout on the [G, Lq, Lk] probabilities).
// On the CPU this runs the fused kernel; on CUDA (until it overrides the hooks) the default
// composition of backend.cpp — both must meet the same reference.
#include <cfloat>

#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

struct Case {
  std::int64_t G, Lq, Lk, dh, Gm;  // Gm = 0: no structural mask
  bool q_keep, k_keep;
  float p_drop;
};

struct Inputs {
  std::vector<float> q, k, v, dout, qk, kk;
  std::vector<std::uint8_t> keep;
};

// Allowed entry (g, i, j) of the spec.
bool allowed(const Case& c, const Inputs& in, std::int64_t g, std::int64_t i, std::int64_t j) {
  if (c.Gm && !in.keep[static_cast<std::size_t>(((g % c.Gm) * c.Lq + i) * c.Lk + j)]) return false;
  if (c.q_keep && in.qk[static_cast<std::size_t>(g * c.Lq + i)] == 0.f) return false;
  if (c.k_keep && in.kk[static_cast<std::size_t>(g * c.Lk + j)] == 0.f) return false;
  return true;
}

double drop_factor(const Case& c, RngKey key, std::int64_t e) {
  if (c.p_drop <= 0.f) return 1.0;
  return philox_uniform_at(key, static_cast<std::uint64_t>(e)) >= c.p_drop ? 1.0 / (1.0 - c.p_drop) : 0.0;
}

// float64 reference: out [G, Lq, dh] and, with dout, dq / dk / dv.
struct RefOut {
  Vec out, dq, dk, dv, p;
};
RefOut reference(const Case& c, const Inputs& in, float scale, RngKey key) {
  const std::int64_t G = c.G, Lq = c.Lq, Lk = c.Lk, dh = c.dh;
  RefOut r;
  r.out.assign(static_cast<std::size_t>(G * Lq * dh), 0.0);
  r.dq.assign(static_cast<std::size_t>(G * Lq * dh), 0.0);
  r.dk.assign(static_cast<std::size_t>(G * Lk * dh), 0.0);
  r.dv.assign(static_cast<std::size_t>(G * Lk * dh), 0.0);
  r.p.assign(static_cast<std::size_t>(G * Lq * Lk), 0.0);
  auto at = [](const std::vector<float>& x, std::int64_t i) { return static_cast<double>(x[static_cast<std::size_t>(i)]); };
  for (std::int64_t g = 0; g < G; ++g)
    for (std::int64_t i = 0; i < Lq; ++i) {
      std::vector<double> s(static_cast<std::size_t>(Lk)), p(s.size()), dp(s.size());
      double mx = -INFINITY;
      for (std::int64_t j = 0; j < Lk; ++j) {
        double d = 0;
        for (std::int64_t e = 0; e < dh; ++e) d += at(in.q, (g * Lq + i) * dh + e) * at(in.k, (g * Lk + j) * dh + e);
        s[static_cast<std::size_t>(j)] = allowed(c, in, g, i, j) ? scale * d : -static_cast<double>(FLT_MAX);
        mx = std::max(mx, s[static_cast<std::size_t>(j)]);
      }
      double sum = 0;
      for (std::int64_t j = 0; j < Lk; ++j) sum += p[static_cast<std::size_t>(j)] = std::exp(s[static_cast<std::size_t>(j)] - mx);
      for (auto& x : p) x /= sum;
      double D = 0;
      for (std::int64_t j = 0; j < Lk; ++j) {
        const double f = drop_factor(c, key, (g * Lq + i) * Lk + j), pj = p[static_cast<std::size_t>(j)];
        r.p[static_cast<std::size_t>((g * Lq + i) * Lk + j)] = pj;
        double dpd = 0;
        for (std::int64_t e = 0; e < dh; ++e) {
          r.out[static_cast<std::size_t>((g * Lq + i) * dh + e)] += pj * f * at(in.v, (g * Lk + j) * dh + e);
          r.dv[static_cast<std::size_t>((g * Lk + j) * dh + e)] += pj * f * at(in.dout, (g * Lq + i) * dh + e);
          dpd += at(in.dout, (g * Lq + i) * dh + e) * at(in.v, (g * Lk + j) * dh + e);
        }
        dp[static_cast<std::size_t>(j)] = dpd * f;
        D += pj * dp[static_cast<std::size_t>(j)];
      }
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!allowed(c, in, g, i, j)) continue;
        const double ds = p[static_cast<std::size_t>(j)] * (dp[static_cast<std::size_t>(j)] - D) * scale;
        for (std::int64_t e = 0; e < dh; ++e) {
          r.dq[static_cast<std::size_t>((g * Lq + i) * dh + e)] += ds * at(in.k, (g * Lk + j) * dh + e);
          r.dk[static_cast<std::size_t>((g * Lk + j) * dh + e)] += ds * at(in.q, (g * Lq + i) * dh + e);
        }
      }
    }
  return r;
}

Inputs make_inputs(Ops& t, const Case& c) {
  Inputs in;
  in.q = t.randn(c.G * c.Lq * c.dh);
  in.k = t.randn(c.G * c.Lk * c.dh);
  in.v = t.randn(c.G * c.Lk * c.dh);
  in.dout = t.randn(c.G * c.Lq * c.dh);
  if (c.Gm) {
    in.keep.resize(static_cast<std::size_t>(c.Gm * c.Lq * c.Lk));
    for (auto& m : in.keep) m = static_cast<std::uint8_t>((t.rng()() % 4) != 0);  // ~25 % masked
    if (c.Lq > 1)
      for (std::int64_t j = 0; j < c.Lk; ++j) in.keep[static_cast<std::size_t>(c.Lk + j)] = 0;  // row 1 fully masked
  }
  if (c.q_keep) {
    in.qk.assign(static_cast<std::size_t>(c.G * c.Lq), 1.f);
    for (auto& x : in.qk) x = (t.rng()() % 5) ? 1.f : 0.f;
    in.qk[0] = 0.f;
  }
  if (c.k_keep) {
    in.kk.assign(static_cast<std::size_t>(c.G * c.Lk), 1.f);
    for (auto& x : in.kk) x = (t.rng()() % 5) ? 1.f : 0.f;
  }
  return in;
}

const Case kCases[] = {
    {1, 1, 1, 1, 0, false, false, 0.f},   {3, 5, 7, 4, 0, false, false, 0.f},  {6, 5, 7, 3, 3, false, false, 0.f},
    {8, 9, 13, 5, 2, true, true, 0.f},    {4, 6, 11, 8, 0, true, false, 0.f},  {4, 6, 11, 8, 0, false, true, 0.f},
    {6, 7, 10, 6, 6, true, true, 0.3f},   {5, 4, 12, 3, 0, false, false, 0.5f}, {64, 32, 96, 32, 16, false, false, 0.f},
    {10, 64, 192, 32, 5, true, true, 0.f}, {12, 16, 33, 17, 4, false, false, 0.1f},
};

TEST_P(Ops, FusedAttentionForwardBackward) {
  for (const Case& c : kCases) {
    const Inputs in = make_inputs(*this, c);
    const float scale = 1.f / std::sqrt(static_cast<float>(c.dh));
    const RngKey key{77, 5};
    Tensor keep = c.Gm ? M(in.keep, {c.Gm, c.Lq, c.Lk}) : Tensor();
    Tensor qk = c.q_keep ? T(in.qk, {c.G, c.Lq}) : Tensor();
    Tensor kk = c.k_keep ? T(in.kk, {c.G, c.Lk}) : Tensor();
    Tensor q = T(in.q, {c.G, c.Lq, c.dh}), k = T(in.k, {c.G, c.Lk, c.dh}), v = T(in.v, {c.G, c.Lk, c.dh});
    Tensor out = be().attention(q, k, v, keep, qk, kk, scale, c.p_drop, key);
    auto g = be().attention_backward(T(in.dout, {c.G, c.Lq, c.dh}), q, k, v, keep, qk, kk, scale, c.p_drop, key);
    RefOut r = reference(c, in, scale, key);
    std::ostringstream what;
    what << "G " << c.G << " Lq " << c.Lq << " Lk " << c.Lk << " dh " << c.dh << " Gm " << c.Gm << " p " << c.p_drop;
    EXPECT_TRUE(close(D(out), r.out, 1e-4, 1e-5)) << "out " << what.str();
    EXPECT_TRUE(close(D(g.dq), r.dq, 1e-3, 1e-5)) << "dq " << what.str();
    EXPECT_TRUE(close(D(g.dk), r.dk, 1e-3, 1e-5)) << "dk " << what.str();
    EXPECT_TRUE(close(D(g.dv), r.dv, 1e-4, 1e-5)) << "dv " << what.str();
    // The composition the default hooks run (what a backend without a fused kernel gets).
    Tensor co = Tensor::empty(out.shape(), DType::f32, dev());
    Tensor cdq = Tensor::empty(q.shape(), DType::f32, dev()), cdk = Tensor::empty(k.shape(), DType::f32, dev()),
           cdv = Tensor::empty(v.shape(), DType::f32, dev());
    attention_composed(be(), co, q, k, v, keep, qk, kk, scale, c.p_drop, key);
    attention_backward_composed(be(), cdq, cdk, cdv, T(in.dout, {c.G, c.Lq, c.dh}), q, k, v, keep, qk, kk, scale,
                                c.p_drop, key);
    EXPECT_TRUE(close(D(co), r.out, 1e-4, 1e-5)) << "composed out " << what.str();
    EXPECT_TRUE(close(D(cdq), r.dq, 1e-3, 1e-5)) << "composed dq " << what.str();
    EXPECT_TRUE(close(D(cdk), r.dk, 1e-3, 1e-5)) << "composed dk " << what.str();
    EXPECT_TRUE(close(D(cdv), r.dv, 1e-4, 1e-5)) << "composed dv " << what.str();
  }
}

TEST_P(Ops, FusedAttentionFullyMaskedRowsAreUniform) {
  // Every entry of group 0 masked: out = mean of the values; every gradient of q and k is zero.
  const std::int64_t G = 2, Lq = 3, Lk = 5, dh = 4;
  auto q = randn(G * Lq * dh), k = randn(G * Lk * dh), v = randn(G * Lk * dh), dout = randn(G * Lq * dh);
  std::vector<float> kk(static_cast<std::size_t>(G * Lk), 1.f);
  for (std::int64_t j = 0; j < Lk; ++j) kk[static_cast<std::size_t>(j)] = 0.f;
  Tensor tq = T(q, {G, Lq, dh}), tk = T(k, {G, Lk, dh}), tv = T(v, {G, Lk, dh}), tkk = T(kk, {G, Lk});
  auto out = F(be().attention(tq, tk, tv, {}, {}, tkk, 0.5f));
  for (std::int64_t i = 0; i < Lq; ++i)
    for (std::int64_t e = 0; e < dh; ++e) {
      double mean = 0;
      for (std::int64_t j = 0; j < Lk; ++j) mean += v[static_cast<std::size_t>(j * dh + e)] / static_cast<double>(Lk);
      EXPECT_NEAR(out[static_cast<std::size_t>(i * dh + e)], mean, 1e-5);
    }
  auto g = be().attention_backward(T(dout, {G, Lq, dh}), tq, tk, tv, {}, {}, tkk, 0.5f);
  auto dq = F(g.dq), dk = F(g.dk);
  for (std::int64_t e = 0; e < Lq * dh; ++e) ASSERT_EQ(dq[static_cast<std::size_t>(e)], 0.f);
  for (std::int64_t e = 0; e < Lk * dh; ++e) ASSERT_EQ(dk[static_cast<std::size_t>(e)], 0.f);
}

TEST_P(Ops, FusedAttentionFiniteDifferences) {
  const Case cases[] = {{3, 4, 6, 3, 3, true, true, 0.f}, {2, 3, 5, 4, 0, false, false, 0.25f}};
  for (const Case& c : cases) {
    const Inputs in = make_inputs(*this, c);
    const float scale = 0.7f;
    const RngKey key{3, 9};
    Tensor keep = c.Gm ? M(in.keep, {c.Gm, c.Lq, c.Lk}) : Tensor();
    Tensor qk = c.q_keep ? T(in.qk, {c.G, c.Lq}) : Tensor();
    Tensor kk = c.k_keep ? T(in.kk, {c.G, c.Lk}) : Tensor();
    const Shape sq{c.G, c.Lq, c.dh}, skv{c.G, c.Lk, c.dh};
    auto g = be().attention_backward(T(in.dout, sq), T(in.q, sq), T(in.k, skv), T(in.v, skv), keep, qk, kk, scale,
                                     c.p_drop, key);
    auto fq = [&](const std::vector<float>& x) {
      return F(be().attention(T(x, sq), T(in.k, skv), T(in.v, skv), keep, qk, kk, scale, c.p_drop, key));
    };
    auto fk = [&](const std::vector<float>& x) {
      return F(be().attention(T(in.q, sq), T(x, skv), T(in.v, skv), keep, qk, kk, scale, c.p_drop, key));
    };
    auto fv = [&](const std::vector<float>& x) {
      return F(be().attention(T(in.q, sq), T(in.k, skv), T(x, skv), keep, qk, kk, scale, c.p_drop, key));
    };
    EXPECT_TRUE(fd_ok(skref::check_fd(fq, in.q, D(in.dout), D(g.dq)))) << "dq, p " << c.p_drop;
    EXPECT_TRUE(fd_ok(skref::check_fd(fk, in.k, D(in.dout), D(g.dk)))) << "dk, p " << c.p_drop;
    EXPECT_TRUE(fd_ok(skref::check_fd(fv, in.v, D(in.dout), D(g.dv)))) << "dv, p " << c.p_drop;
  }
}

TEST_P(Ops, FusedAttentionRejectsBadArguments) {
  Tensor q = T(randn(2 * 3 * 4), {2, 3, 4}), k = T(randn(2 * 5 * 4), {2, 5, 4});
  EXPECT_SK_ERROR(be().attention(q, k, T(randn(2 * 5 * 3), {2, 5, 3}), {}, {}, {}, 1.f), "attention");
  EXPECT_SK_ERROR(be().attention(q, k, k, M(std::vector<std::uint8_t>(3 * 3 * 5, 1), {3, 3, 5}), {}, {}, 1.f),
                  "keep");
  EXPECT_SK_ERROR(be().attention(q, k, k, {}, T(randn(6), {2, 3}), T(randn(2 * 4), {2, 4}), 1.f), "k_keep");
  EXPECT_SK_ERROR(be().attention(q, k, k, {}, {}, {}, 1.f, 1.f), "dropout");
  EXPECT_SK_ERROR(be().attention_backward(T(randn(2 * 3 * 5), {2, 3, 5}), q, k, k, {}, {}, {}, 1.f), "dout");
}

}  // namespace
}  // namespace sk::test
