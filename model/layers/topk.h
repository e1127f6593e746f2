// topk.h — the two selection operators of the sort nets (model-spec §10, §11.4), forward and
// backward on Backend ops:
//   * differentiable top-k: k rounds of softmax(X/τ), arg-max, exclusion of the chosen column
//     (on a copy of the input, so defect D5 does not arise);
//   * gumbel-sinkhorn: log(R + 1e-6) + Gumbel noise, /τ, `iters` alternating log-sum-exp
//     normalisations over columns then rows, exp.
#pragma once
#include <cstdint>
#include <vector>

#include "model/layers/attention_ops.h"

namespace sk {

struct TopKStash {
  float tau = 1.f;
  std::vector<Tensor> p;    // per round: softmax(X_r / τ) [N, rows, m]
  std::vector<Tensor> idx;  // per round: chosen column, i64 [N·rows, 1]
};

// x [N, rows, m] (entries overwritten with −FLT_MAX are never chosen while a finite one remains)
// -> selection with idx/val [N, rows·k]; row i·k + r is round r of row i.
attn::Selection differentiable_topk(Backend& be, const Tensor& x, std::int64_t k, float tau, TopKStash& s);
// dval [N, rows·k] -> dx [N, rows, m] (gradient of §10: only through the emitted probabilities).
Tensor differentiable_topk_backward(Backend& be, const Tensor& dval, const TopKStash& s);

struct GumbelStash {
  float tau = 1.f;
  Tensor r_eps;                 // R + 1e-6 [N, rows, m]
  std::vector<Tensor> z_in;     // per iteration: input of the last-axis normalisation
  std::vector<Tensor> lse_col;  // per iteration: its log-sum-exp [N, rows, 1]
  std::vector<Tensor> a;        // per iteration: input of the row-axis normalisation
  std::vector<Tensor> lse_row;  // per iteration: its log-sum-exp [N, 1, m]
  Tensor P;                     // exp of the result [N, rows, m]
};

// r [N, rows, m] (non-negative) -> selection with the dense soft permutation P [N, rows, m], k = 1
// and no idx (key masks are mixed with P too, defect D14 corrected). Noise U ~ Philox uniform(key),
// element-indexed.
attn::Selection gumbel_sinkhorn(Backend& be, const Tensor& r, std::int64_t iters, float tau, RngKey key,
                                GumbelStash& s);
// dP [N, rows, m] -> dr [N, rows, m].
Tensor gumbel_sinkhorn_backward(Backend& be, const Tensor& dP, const GumbelStash& s);

}  // namespace sk
