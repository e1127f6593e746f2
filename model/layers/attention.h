// attention.h — the Sinkhorn self-attention layer (model-spec §8–§13): to_q / to_kv / to_out,
// head split and merge, local-attention heads (§9), non-causal sinkhorn heads (§11, top-k or
// gumbel-sinkhorn selection), causal sinkhorn heads (§12) and context-attention layers (§13).
// Forward and backward are written by hand on Backend ops only, so the layer runs on every backend.
//
// Shapes (letters of layers/layer.h): x [B, T, D]; q, k, v [B, H, T, dh]; local heads [B, Hl, T, dh];
// sinkhorn heads [B, Hs, T, dh] (merged N = B·Hs rows, batch-major); context [B, Tc, D].
//
// Reference defects (model-spec §20) and what this layer does about them:
//   D1  values are reordered from the values (corrected).
//   D2  n_top null buckets are prepended to the causal key mask (corrected).
//   D4  n_sortcut larger than the number of key buckets: rejected (sk::Error naming n_sortcut).
//   D5  non-causal simple sort net with n_top_buckets >= 2: allowed; the top-k works on a copy, so
//       the gradient is the one of §10 (what the reference would compute without the in-place bug).
//   D8  non-causal attention sort net uses tau = 1 (as the reference).
//   D9  context layer given input_mask but no context_mask: the context mask defaults to all-true
//       (corrected; the reference would reuse the query mask).
//   D11 non-causal simple sort net with kv_bucket_size != bucket_size or n_sortcut > 0: rejected.
//   D12 causal simple sort net with fewer buckets than n_top_buckets: clamped consistently (n_top =
//       min(n_top_buckets, T/bs) null columns, the first nb + n_top columns of `linear`).
//   D13 gumbel-sinkhorn with n_sortcut >= 2: rejected.
//   D14 gumbel-sinkhorn with masks: masked inside the mixture (corrected): the soft mixture of key
//       buckets mixes k·m and v·m (m the key-bucket mask), and a mixed key slot is allowed iff its
//       mixed mask weight Σ_v P[u,v]·m[v,j] > 0; query masking and the own bucket as in §11.5.
//
// Randomness (Philox, keyed by ctx.key(layer_id, site)): attention dropout of the local heads
// (site 1) and of the sinkhorn heads (site 2), post-projection dropout (site 3) — training mode
// only — and the gumbel noise (site 4, drawn in every mode like the reference). Backward redraws
// every mask from the same keys, so a recomputing caller sees identical numbers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/layers/attention_ops.h"
#include "model/layers/layer.h"
#include "model/layers/local_attention.h"
#include "model/layers/sort_net.h"
#include "model/layers/topk.h"

namespace sk {

struct AttentionConfig {
  std::int64_t dim = 0, heads = 8, dim_head = 0 /*0: dim / heads*/, bucket_size = 64,
               kv_bucket_size = 64 /*0: bucket_size*/, max_seq_len = 0;
  bool causal = false, non_permutative = true;
  std::int64_t sinkhorn_iter = 5, n_sortcut = 0;
  float temperature = 0.75f;
  float attn_dropout = 0.f;  // on attention probabilities (sinkhorn and local heads)
  float dropout = 0.f;       // attn_layer_dropout: after to_out
  std::int64_t n_local_attn_heads = 0;
  bool use_simple_sort_net = false;
  std::int64_t n_top_buckets = 2;
  // Context-attention layer (model-spec §13): keys = values = raw ctx.context split into heads, no
  // to_kv, all heads sinkhorn, attention sort net with tau = 1, never causal. For such a layer
  // `causal`, `n_local_attn_heads` and `use_simple_sort_net` are ignored (the reference's context
  // layers do not receive them); kv_bucket_size is the context bucket size and n_sortcut the
  // context_n_sortcut. heads * dim_head must equal dim.
  bool is_context = false;
};

// Site numbers of the Philox draws of one attention layer.
enum AttentionSite : std::uint64_t {
  kSiteLocalAttnDropout = 1,
  kSiteSinkhornAttnDropout = 2,
  kSiteOutputDropout = 3,
  kSiteGumbel = 4,
};

// What the sinkhorn heads keep for backward.
struct SinkhornStash {
  Tensor q, k, v;          // [B, Hs, T, dh], [B, Hs, Tk, dh] (causal: after the half-head rotation)
  SortNetStash sort;       // sort-net intermediates
  Tensor keep_sel;         // causal: f32 [1, nb, n_top + nb] keep mask of R (future buckets = 0)
  Tensor r_sel;            // causal: R after the overwrite (input of top-k)
  TopKStash topk;          // top-k path
  GumbelStash gumbel;      // gumbel path
  Tensor kv_keep;          // gumbel path with masks: key-bucket mask f32 [N, nkb, kbs] (D14), else undefined
  attn::Selection sel;     // chosen buckets (+ probabilities or the dense soft permutation)
  attn::AttendStash attend;  // probabilities and keep factors of the bucketed attention
};

struct AttentionStash {
  Tensor x;                // [B, T, D]
  Tensor h;                // [B, T, HD] merged head outputs (input of to_out)
  std::int64_t Tk = 0;     // key length (T, or Tc for context layers)
  LocalAttnStash local;
  SinkhornStash sink;
};

class SinkhornSelfAttention : public Residual {
 public:
  // Registers parameters in `ps` under `prefix` + the names of model-spec §6.7, initialised per §17.
  SinkhornSelfAttention(const AttentionConfig& cfg, ParamSet& ps, const std::string& prefix, std::uint64_t layer_id);
  // x [B, T, D] -> [B, T, D]. Masks from c.input_mask (u8 [B, T] or undefined); context layers read
  // c.context [B, Tc, D] and c.context_mask (u8 [B, Tc] or undefined).
  Tensor forward(const Tensor& x, Stash& s, const Context& c) const override;
  // dy [B, T, D] -> dx; parameter gradients +=; context layers add dcontext into *c.dcontext when
  // c.dcontext != nullptr (allocated and zeroed here if undefined).
  Tensor backward(const Tensor& dy, Stash& s, const Context& c) override;

  const AttentionConfig& config() const { return cfg_; }

 private:
  struct Dims {
    std::int64_t B, T, Tk, nb, nkb, n_top, rows, k;  // rows·k selection rows per sequence
  };
  Dims dims(const Tensor& x, std::int64_t Tk) const;
  Tensor sinkhorn_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& q_mask,
                          const Tensor& kv_mask, const Dims& d, SinkhornStash& s, const Context& c) const;
  QKVGrads sinkhorn_backward(const Tensor& dout, const Dims& d, SinkhornStash& s, const Context& c);
  Tensor causal_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, const Dims& d,
                        SinkhornStash& s, const Context& c) const;
  QKVGrads causal_backward(const Tensor& dout, const Dims& d, SinkhornStash& s, const Context& c);

  AttentionConfig cfg_;
  std::int64_t dh_ = 0, hd_ = 0, hl_ = 0, hs_ = 0;
  std::uint64_t layer_id_ = 0;
  SortNetKind sort_kind_ = SortNetKind::attention;
  Parameter* wq_ = nullptr;    // to_q.weight [HD, D]
  Parameter* wkv_ = nullptr;   // to_kv.weight [2·HD, D] (not in context layers)
  Parameter* wo_ = nullptr;    // to_out.weight [D, HD]
  Parameter* bo_ = nullptr;    // to_out.bias [D]
  Parameter* null_k_ = nullptr;  // causal: sinkhorn_attention.null_keys [Hs, 1, dh]
  Parameter* null_v_ = nullptr;  // causal: sinkhorn_attention.null_values [Hs, 1, dh]
  Parameter* linear_ = nullptr;  // simple sort nets: sinkhorn_attention.sort_net.linear
  // Size-only masks built once per shape (forward and reversible recompute reuse them).
  mutable attn::ConstMaskCache masks_;
};

}  // namespace sk
