// sort_net.h — the four sort nets that score candidate key buckets for every query bucket
// (model-spec §11.1, §11.2, §12.2, §12.3). Each returns R [N, rows, m]; the caller selects with
// top-k or gumbel-sinkhorn. Inputs are the merged sinkhorn heads: q [N, T, dh], k [N, Tk, dh]
// with N = B·Hs (batch-major). Sort nets see every position (masks are not consulted, §15).
#pragma once
#include <cstdint>

#include "model/core/param.h"
#include "model/layers/attention_ops.h"

namespace sk {

enum class SortNetKind : std::uint8_t {
  attention,         // non-causal: bucket means, R = sq·skᵀ/√dh (sortcut: one summary of the whole q)
  simple,            // non-causal: ReLU([Σq, Σk]·linear_h), rows and columns per key bucket
  causal_attention,  // cumavg(q) at bucket starts · Σ cumavg(k) per bucket, n_top zero null columns first
  causal_simple,     // LeakyReLU([cumavg(k), k] at bucket starts · linear_h), first nb + n_top columns
};

struct SortNetDims {
  std::int64_t B = 0, Hs = 0, dh = 0;
  std::int64_t T = 0, Tk = 0;
  std::int64_t nb = 0, nkb = 0;   // query buckets (T/bs), key buckets (Tk/kbs)
  std::int64_t n_top = 0;         // causal null columns
  bool sortcut = false;           // attention net: one summary row
};

struct SortNetStash {
  Tensor sq, sk;     // summaries (attention nets) [N, rows, dh], [N, m, dh] (causal: with null rows)
  Tensor feat;       // simple nets: features [N, rows, 2dh]
  Tensor w;          // simple nets: the per-row weight matrices [N, 2dh, m]
  Tensor r_pre, r;   // simple nets: before / after the activation [N, rows, m]
};

// q [N, T, dh], k [N, Tk, dh], linear: `sort_net.linear` for simple nets (else nullptr) -> R.
Tensor sort_net_forward(Backend& be, SortNetKind kind, const SortNetDims& d, const Tensor& q, const Tensor& k,
                        const Parameter* linear, SortNetStash& s);
// dR [N, rows, m] -> dq [N, T, dh] (undefined for causal_simple, which does not read q), dk [N, Tk, dh];
// linear->grad += its gradient.
void sort_net_backward(Backend& be, SortNetKind kind, const SortNetDims& d, const Tensor& dR, const Tensor& q,
                       const Tensor& k, Parameter* linear, const SortNetStash& s, Tensor& dq, Tensor& dk);

}  // namespace sk
