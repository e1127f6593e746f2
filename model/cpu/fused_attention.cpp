// fused_attention.cpp — CpuBackend::do_attention / do_attention_backward (spec in backend.h, "fused
// attention"). One group (a query bucket or window against its key set) at a time, OpenMP over the
// G groups: the Lq×Lk scores of a group live in a per-thread scratch (a few tens of KB, L1/L2
// resident), so no [G, Lq, Lk] tensor is ever allocated. Backward recomputes the probabilities
// from q, k and the masks with the very same code as forward (bit-identical p).
//
// Arithmetic follows the unfused composition (matmul with alpha = scale, overwrite with −FLT_MAX,
// softmax with the row max subtracted and the sum in double, dropout from the Philox stream of the
// [G, Lq, Lk] tensor, softmax_backward with the dot in double, masked entries zeroed). The five
// small products of a group (q kᵀ, p v; dout vᵀ, pᵀ dout, ds k, dsᵀ q) are single-threaded
// OpenBLAS calls, the same sgemm the unfused path runs per group.
#include <cblas.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

namespace {

constexpr float kFill = -3.4028234663852886e38f;  // −FLT_MAX

struct AttnArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const std::uint8_t* keep = nullptr;  // [Gm, Lq, Lk] or null
  const float* q_keep = nullptr;       // [G, Lq] or null
  const float* k_keep = nullptr;       // [G, Lk] or null
  std::int64_t G = 0, Gm = 1, Lq = 0, Lk = 0, dh = 0;
  float scale = 1.f, p_drop = 0.f;
  RngKey key{};
};

// Per-thread scratch of one group.
struct Scratch {
  std::vector<float> s, dp;  // [Lq, Lk] probabilities, [Lq, Lk] their gradient
  explicit Scratch(const AttnArgs& a)
      : s(static_cast<std::size_t>(a.Lq * a.Lk)), dp(static_cast<std::size_t>(a.Lq * a.Lk)) {}
};

// Row-major single-threaded products of one group (OpenBLAS runs single-threaded inside our
// OpenMP team: cpu::threads_init). C[M, N] = alpha · op(A) op(B).
void mm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A, const float* B,
        float* C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
              static_cast<blasint>(N), static_cast<blasint>(K), alpha, A, static_cast<blasint>(ta ? M : K), B,
              static_cast<blasint>(tb ? K : N), 0.f, C, static_cast<blasint>(N));
}

inline bool allowed(const std::uint8_t* mrow, const float* kk, bool q_real, std::int64_t j) {
  return q_real && (!mrow || mrow[j]) && (!kk || kk[j] != 0.f);
}

// Scores, mask overwrite and softmax of group g into s [Lq, Lk] (probabilities p, before dropout).
void group_probs(const AttnArgs& a, std::int64_t g, Scratch& w) {
  const std::int64_t Lq = a.Lq, Lk = a.Lk, dh = a.dh;
  float* S = w.s.data();
  mm(false, true, Lq, Lk, dh, a.scale, a.q + g * Lq * dh, a.k + g * Lk * dh, S);
  const std::uint8_t* mg = a.keep ? a.keep + (g % a.Gm) * Lq * Lk : nullptr;
  const float* qk = a.q_keep ? a.q_keep + g * Lq : nullptr;
  const float* kk = a.k_keep ? a.k_keep + g * Lk : nullptr;
  const bool masked = mg || qk || kk;
  for (std::int64_t i = 0; i < Lq; ++i) {
    float* sr = S + i * Lk;
    const std::uint8_t* mr = mg ? mg + i * Lk : nullptr;
    const bool q_real = !qk || qk[i] != 0.f;
    float mx = -std::numeric_limits<float>::infinity();
    if (masked) {
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!allowed(mr, kk, q_real, j)) sr[j] = kFill;
        mx = sr[j] > mx ? sr[j] : mx;
      }
    } else {
      for (std::int64_t j = 0; j < Lk; ++j) mx = sr[j] > mx ? sr[j] : mx;
    }
    // Every masked entry holds kFill, so they share one exponential.
    const float e_fill = std::exp(kFill - mx);
    double sum = 0.0;
    for (std::int64_t j = 0; j < Lk; ++j) {
      const float e = (masked && !allowed(mr, kk, q_real, j)) ? e_fill : std::exp(sr[j] - mx);
      sr[j] = e;
      sum += e;
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (std::int64_t j = 0; j < Lk; ++j) sr[j] *= inv;
  }
}

// Dropout of a [Lq, Lk] block of group g in place (x -> kept ? x * 1/(1-p) : 0).
void group_dropout(const AttnArgs& a, std::int64_t g, float* x) {
  const float ds = 1.0f / (1.0f - a.p_drop);
  const std::uint64_t base = static_cast<std::uint64_t>(g * a.Lq * a.Lk);
  const std::int64_t n = a.Lq * a.Lk;
  for (std::int64_t e = 0; e < n; ++e)
    x[e] = philox_uniform_at(a.key, base + static_cast<std::uint64_t>(e)) >= a.p_drop ? x[e] * ds : 0.f;
}

AttnArgs make_args(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                   const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  AttnArgs a;
  a.q = f32(q);
  a.k = f32(k);
  a.v = f32(v);
  a.keep = keep.defined() ? u8(keep) : nullptr;
  a.q_keep = q_keep.defined() ? f32(q_keep) : nullptr;
  a.k_keep = k_keep.defined() ? f32(k_keep) : nullptr;
  a.G = q.dim(0);
  a.Gm = keep.defined() ? keep.dim(0) : 1;
  a.Lq = q.dim(1);
  a.Lk = k.dim(1);
  a.dh = q.dim(2);
  a.scale = scale;
  a.p_drop = p_drop;
  a.key = key;
  return a;
}

bool parallel_worth(const AttnArgs& a) { return a.G > 1 && a.G * a.Lq * a.Lk * a.dh > kParallelMin; }

}  // namespace

void CpuBackend::do_attention(Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep,
                              const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  const AttnArgs a = make_args(q, k, v, keep, q_keep, k_keep, scale, p_drop, key);
  float* po = f32(out);
#pragma omp parallel if (parallel_worth(a))
  {
    Scratch w(a);
#pragma omp for schedule(static)
    for (std::int64_t g = 0; g < a.G; ++g) {
      group_probs(a, g, w);
      if (a.p_drop > 0.f) group_dropout(a, g, w.s.data());
      mm(false, false, a.Lq, a.dh, a.Lk, 1.f, w.s.data(), a.v + g * a.Lk * a.dh, po + g * a.Lq * a.dh);
    }
  }
}

void CpuBackend::do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                       const Tensor& k, const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                                       const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  const AttnArgs a = make_args(q, k, v, keep, q_keep, k_keep, scale, p_drop, key);
  const float* pdo = f32(dout);
  float* pdq = f32(dq);
  float* pdk = f32(dk);
  float* pdv = f32(dv);
  const std::int64_t Lq = a.Lq, Lk = a.Lk, dh = a.dh;
#pragma omp parallel if (parallel_worth(a))
  {
    Scratch w(a);
    std::vector<float> pd;  // dropped probabilities (only with dropout)
    if (a.p_drop > 0.f) pd.resize(static_cast<std::size_t>(Lq * Lk));
#pragma omp for schedule(static)
    for (std::int64_t g = 0; g < a.G; ++g) {
      group_probs(a, g, w);  // w.s = p
      const float* P = w.s.data();
      const float* dog = pdo + g * Lq * dh;
      const float* qg = a.q + g * Lq * dh;
      const float* kg = a.k + g * Lk * dh;
      float* DP = w.dp.data();
      // dv = pdᵀ dout
      const float* PD = P;
      if (a.p_drop > 0.f) {
        std::memcpy(pd.data(), P, sizeof(float) * static_cast<std::size_t>(Lq * Lk));
        group_dropout(a, g, pd.data());
        PD = pd.data();
      }
      mm(true, false, Lk, dh, Lq, 1.f, PD, dog, pdv + g * Lk * dh);
      // dpd = dout vᵀ, then dp = dropout(dpd)
      mm(false, true, Lq, Lk, dh, 1.f, dog, a.v + g * Lk * dh, DP);
      if (a.p_drop > 0.f) group_dropout(a, g, DP);
      // ds = p (dp − <p, dp>), zero where masked (written over DP)
      const std::uint8_t* mg = a.keep ? a.keep + (g % a.Gm) * Lq * Lk : nullptr;
      const float* qk = a.q_keep ? a.q_keep + g * Lq : nullptr;
      const float* kk = a.k_keep ? a.k_keep + g * Lk : nullptr;
      const bool masked = mg || qk || kk;
      for (std::int64_t i = 0; i < Lq; ++i) {
        const float* pr = P + i * Lk;
        float* dr = DP + i * Lk;
        double dot = 0.0;
        for (std::int64_t j = 0; j < Lk; ++j) dot += static_cast<double>(dr[j]) * pr[j];
        const float D = static_cast<float>(dot);
        const std::uint8_t* mr = mg ? mg + i * Lk : nullptr;
        const bool q_real = !qk || qk[i] != 0.f;
        for (std::int64_t j = 0; j < Lk; ++j)
          dr[j] = (masked && !allowed(mr, kk, q_real, j)) ? 0.f : pr[j] * (dr[j] - D);
      }
      // dq = scale · ds k;  dk = scale · dsᵀ q
      mm(false, false, Lq, dh, Lk, scale, DP, kg, pdq + g * Lq * dh);
      mm(true, false, Lk, dh, Lq, scale, DP, qg, pdk + g * Lk * dh);
    }
  }
}

}  // namespace sk
