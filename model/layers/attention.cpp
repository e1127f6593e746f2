// attention.cpp — SinkhornSelfAttention (see attention.h). Each forward is followed by its
// backward, which calls the same pieces in reverse order.
#include "model/layers/attention.h"
#include "model/layers/linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace sk {
namespace {

std::string layer_where(const std::string& prefix) { return "attention layer '" + prefix + "': "; }

// Kinds of the layer's cached constant masks (attn::ConstMaskCache; local windows use kind 0).
constexpr int kMaskCausalSelection = 1;
constexpr int kMaskCausalStructural = 2;

// Causal selection keep mask [1, nb, n_top + nb]: real bucket j is a candidate of query bucket i
// only when j < i (model-spec §12.4); null columns always.
Tensor causal_selection_keep(std::int64_t nb, std::int64_t n_top, Device dev) {
  std::int64_t m = n_top + nb;
  std::vector<float> v(static_cast<std::size_t>(nb * m));
  for (std::int64_t i = 0; i < nb; ++i)
    for (std::int64_t c = 0; c < m; ++c)
      v[static_cast<std::size_t>(i * m + c)] = (c < n_top || c - n_top < i) ? 1.f : 0.f;
  return attn::host_tensor(v, {1, nb, m}, dev);
}

// Structural causal keep mask u8 [Hs·nb, bs, S] (model-spec §12.7), S = n_top·bs + bs: own-bucket
// key j is forbidden for query i when j > i; in the last bucket of the rotated heads (h >= hh)
// queries 1 … bs−1 are forbidden entries 0 … n_top·bs.
Tensor causal_structural_keep(std::int64_t Hs, std::int64_t hh, std::int64_t nb, std::int64_t bs, std::int64_t n_top,
                              Device dev) {
  std::int64_t S0 = n_top * bs, S = S0 + bs;
  std::vector<std::uint8_t> m(static_cast<std::size_t>(Hs * nb * bs * S));
  for (std::int64_t h = 0; h < Hs; ++h)
    for (std::int64_t u = 0; u < nb; ++u) {
      bool rot = h >= hh && u == nb - 1;
      for (std::int64_t i = 0; i < bs; ++i)
        for (std::int64_t j = 0; j < S; ++j) {
          bool tri = !(j >= S0 && j - S0 > i);
          bool last = rot && i >= 1 && j <= S0;
          m[static_cast<std::size_t>(((h * nb + u) * bs + i) * S + j)] = (tri && !last) ? 1 : 0;
        }
    }
  return attn::host_mask(m, {Hs * nb, bs, S}, dev);
}

// Null buckets: param [Hs, 1, dh] -> [N, n_top, bs·dh] (bs copies of the head's vector per bucket).
Tensor null_buckets(Backend& be, const Tensor& param, std::int64_t B, std::int64_t n_top, std::int64_t bs) {
  std::int64_t Hs = param.dim(0), dh = param.dim(2);
  Tensor z = Tensor::zeros({B, Hs, n_top, bs, dh}, DType::f32, param.device());
  return be.add(z, param.reshape({1, Hs, 1, 1, dh})).reshape({B * Hs, n_top, bs * dh});
}
// d(null buckets) [N, n_top, bs·dh] -> grad [Hs, 1, dh] +=.
void null_buckets_backward(Backend& be, Tensor& grad, const Tensor& dnull, std::int64_t B, std::int64_t bs) {
  std::int64_t Hs = grad.dim(0), dh = grad.dim(2), n_top = dnull.dim(1);
  Tensor d = be.sum_to(dnull.reshape({B, Hs, n_top, bs, dh}), {1, Hs, 1, 1, dh});
  be.axpy(grad, d);
}

Tensor to_f32_mask(Backend& be, const Tensor& m, Device dev) { return be.cast(m.to(dev), DType::f32); }

// 1 where x > 0, 0 where x == 0 (x >= 0, finite): min(x·FLT_MAX, 1) twice, so that even the
// smallest positive (denormal) x maps to exactly 1. The attention ops want a 0/1 keep factor.
Tensor positive_indicator(Backend& be, const Tensor& x) {
  Tensor one = Tensor::full({1, 1, 1}, 1.f, x.device());
  Tensor y = be.binary(be.scale(x, attn::kFltMax), one, BinaryOp::min);
  return be.binary(be.scale(y, attn::kFltMax), one, BinaryOp::min);
}

// x [N, nkb, kbs·dh] times the key-bucket mask m [N, nkb, kbs] at every position (and its own
// backward: the map is linear and self-adjoint).
Tensor mask_positions(Backend& be, const Tensor& x, const Tensor& m) {
  std::int64_t N = m.dim(0), nkb = m.dim(1), kbs = m.dim(2), dh = x.dim(2) / kbs;
  return be.mul(x.reshape({N, nkb, kbs, dh}), m.reshape({N, nkb, kbs, 1})).reshape({N, nkb, kbs * dh});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
SinkhornSelfAttention::SinkhornSelfAttention(const AttentionConfig& cfg, ParamSet& ps, const std::string& prefix,
                                             std::uint64_t layer_id)
    : cfg_(cfg), layer_id_(layer_id) {
  const std::string W = layer_where(prefix);
  SK_CHECK(cfg_.dim > 0, W, "dim must be > 0, got ", cfg_.dim);
  SK_CHECK(cfg_.heads > 0, W, "heads must be > 0, got ", cfg_.heads);
  if (cfg_.dim_head == 0) {
    SK_CHECK(cfg_.dim % cfg_.heads == 0, W, "dim (", cfg_.dim, ") must be divisible by heads (", cfg_.heads,
             ") when dim_head is not given");
    cfg_.dim_head = cfg_.dim / cfg_.heads;
  }
  SK_CHECK(cfg_.dim_head > 0, W, "dim_head must be > 0, got ", cfg_.dim_head);
  SK_CHECK(cfg_.bucket_size > 0, W, "bucket_size must be > 0, got ", cfg_.bucket_size);
  if (cfg_.kv_bucket_size == 0) cfg_.kv_bucket_size = cfg_.bucket_size;
  SK_CHECK(cfg_.kv_bucket_size > 0, W, "kv_bucket_size must be > 0, got ", cfg_.kv_bucket_size);
  if (cfg_.is_context) {
    // The reference's context layers never receive these arguments (model-spec §13).
    cfg_.causal = false;
    cfg_.n_local_attn_heads = 0;
    cfg_.use_simple_sort_net = false;
    SK_CHECK(cfg_.heads * cfg_.dim_head == cfg_.dim, W,
             "context attention needs heads * dim_head == dim (the context is split into heads of width dim / heads), ",
             "got heads = ", cfg_.heads, ", dim_head = ", cfg_.dim_head,
             ", dim = ", cfg_.dim);
  }
  SK_CHECK(cfg_.n_local_attn_heads >= 0 && cfg_.n_local_attn_heads <= cfg_.heads, W,
           "n_local_attn_heads must be in [0, heads = ", cfg_.heads, "], got ", cfg_.n_local_attn_heads);
  SK_CHECK(cfg_.n_top_buckets >= 1, W, "n_top_buckets must be >= 1, got ", cfg_.n_top_buckets);
  SK_CHECK(cfg_.n_sortcut >= 0, W, "n_sortcut must be >= 0, got ", cfg_.n_sortcut);
  SK_CHECK(cfg_.temperature > 0.f, W, "temperature must be > 0, got ", cfg_.temperature);
  SK_CHECK(cfg_.attn_dropout >= 0.f && cfg_.attn_dropout < 1.f, W, "attn_dropout must be in [0, 1), got ",
           cfg_.attn_dropout);
  SK_CHECK(cfg_.dropout >= 0.f && cfg_.dropout < 1.f, W, "attn_layer_dropout must be in [0, 1), got ", cfg_.dropout);
  if (cfg_.causal) {
    SK_CHECK(cfg_.n_sortcut == 0, W, "n_sortcut (", cfg_.n_sortcut, ") can only be used with non-causal attention");
    SK_CHECK(cfg_.kv_bucket_size == cfg_.bucket_size, W, "causal attention needs kv_bucket_size (", cfg_.kv_bucket_size,
             ") == bucket_size (", cfg_.bucket_size, ")");
  } else if (!cfg_.non_permutative) {
    SK_CHECK(cfg_.sinkhorn_iter >= 1, W, "sinkhorn_iter must be >= 1, got ", cfg_.sinkhorn_iter);
    SK_CHECK(cfg_.n_sortcut <= 1, W, "n_sortcut = ", cfg_.n_sortcut,
             " with non_permutative = false is not supported (gumbel-sinkhorn yields one soft bucket; defect D13)");
  }
  if (cfg_.use_simple_sort_net) {
    SK_CHECK(cfg_.max_seq_len >= cfg_.bucket_size, W, "the simple sort net needs max_seq_len (", cfg_.max_seq_len,
             ") >= bucket_size (", cfg_.bucket_size, ")");
    if (!cfg_.causal) {
      SK_CHECK(cfg_.kv_bucket_size == cfg_.bucket_size, W, "use_simple_sort_net with kv_bucket_size (",
               cfg_.kv_bucket_size, ") != bucket_size (", cfg_.bucket_size, ") is not supported (defect D11)");
      SK_CHECK(cfg_.n_sortcut == 0, W, "use_simple_sort_net with n_sortcut (", cfg_.n_sortcut,
               ") > 0 is not supported (defect D11)");
    }
  }
  dh_ = cfg_.dim_head;
  hd_ = cfg_.heads * dh_;
  hl_ = cfg_.n_local_attn_heads;
  hs_ = cfg_.heads - hl_;
  if (cfg_.causal) sort_kind_ = cfg_.use_simple_sort_net ? SortNetKind::causal_simple : SortNetKind::causal_attention;
  else sort_kind_ = cfg_.use_simple_sort_net ? SortNetKind::simple : SortNetKind::attention;

  // Parameters, in the reference's state_dict order (model-spec §6.7), initialised per §17.
  float bound_in = 1.f / std::sqrt(static_cast<float>(cfg_.dim));
  float bound_hd = 1.f / std::sqrt(static_cast<float>(hd_));
  wq_ = ps.add(prefix + "to_q.weight", {hd_, cfg_.dim}, Init::Uniform(bound_in));
  if (!cfg_.is_context) wkv_ = ps.add(prefix + "to_kv.weight", {2 * hd_, cfg_.dim}, Init::Uniform(bound_in));
  wo_ = ps.add(prefix + "to_out.weight", {cfg_.dim, hd_}, Init::Uniform(bound_hd));
  bo_ = ps.add(prefix + "to_out.bias", {cfg_.dim}, Init::Uniform(bound_hd));
  if (cfg_.causal) {
    null_k_ = ps.add(prefix + "sinkhorn_attention.null_keys", {hs_, 1, dh_}, Init::Normal(1.f));
    null_v_ = ps.add(prefix + "sinkhorn_attention.null_values", {hs_, 1, dh_}, Init::Normal(1.f));
  }
  if (cfg_.use_simple_sort_net) {
    std::int64_t cols = cfg_.causal ? cfg_.max_seq_len / cfg_.bucket_size + cfg_.n_top_buckets
                                    : cfg_.max_seq_len / cfg_.kv_bucket_size;
    linear_ = ps.add(prefix + "sinkhorn_attention.sort_net.linear", {1, hs_, 2 * dh_, cols}, Init::Normal(1.f));
  }
}

SinkhornSelfAttention::Dims SinkhornSelfAttention::dims(const Tensor& x, std::int64_t Tk) const {
  Dims d{};
  d.B = x.dim(0);
  d.T = x.dim(1);
  d.Tk = Tk;
  d.nb = d.T / cfg_.bucket_size;
  d.nkb = Tk / cfg_.kv_bucket_size;
  if (cfg_.causal) {
    d.n_top = std::min(cfg_.n_top_buckets, d.nb);  // D12: the same clamp for null buckets and columns
    d.rows = d.nb;
    d.k = d.n_top;
    return d;
  }
  d.n_top = std::min(cfg_.n_top_buckets, d.nkb);
  bool sortcut = cfg_.n_sortcut > 0;
  d.rows = sortcut ? 1 : (cfg_.use_simple_sort_net ? d.nkb : d.nb);
  if (!cfg_.non_permutative) d.k = 1;
  else d.k = sortcut ? cfg_.n_sortcut : d.n_top;
  return d;
}

// ---------------------------------------------------------------------------------------------
Tensor SinkhornSelfAttention::forward(const Tensor& x, Stash& stash, const Context& c) const {
  Backend& be = c.backend();
  AttentionStash& st = stash.get<AttentionStash>();
  const std::string W = "attention layer " + std::to_string(layer_id_) + ": ";
  SK_CHECK(x.ndim() == 3 && x.dim(2) == cfg_.dim, W, "x must be [B, T, ", cfg_.dim, "], got ", x.str());
  std::int64_t B = x.dim(0), T = x.dim(1);
  SK_CHECK(B > 0, W, "the batch has no rows (x is ", x.str(), "): nothing to attend");
  SK_CHECK(T > 0 && T % cfg_.bucket_size == 0, W, "sequence length ", T, " must be a positive multiple of bucket_size ",
           cfg_.bucket_size);
  Device dev = x.device();
  Tensor q_mask;  // f32 [B, T] or undefined
  if (c.input_mask.defined()) {
    SK_CHECK(c.input_mask.dtype() == DType::u8 && c.input_mask.shape() == Shape({B, T}), W, "input_mask must be u8 [",
             B, ", ", T, "], got ", c.input_mask.str());
    q_mask = to_f32_mask(be, c.input_mask, dev);
  }

  Tensor q4 = attn::split_heads(be, linear_matmul(be, c.gemm_precision, x, wq_->value, false, true), cfg_.heads);  // [B, H, T, dh]
  Tensor k4, v4, kv_mask;
  if (cfg_.is_context) {
    const Tensor& ctx = c.context;
    SK_CHECK(ctx.defined(), W, "a context-attention layer needs ctx.context");
    SK_CHECK(ctx.ndim() == 3 && ctx.dim(0) == B && ctx.dim(1) > 0 && ctx.dim(2) == cfg_.dim, W, "context must be [", B,
             ", Tc >= 1, ", cfg_.dim, "], got ", ctx.str());
    k4 = attn::split_heads(be, ctx.to(dev), cfg_.heads);  // [B, H, Tc, dh]; keys = values
    v4 = k4;
    if (c.context_mask.defined()) {
      SK_CHECK(c.context_mask.dtype() == DType::u8 && c.context_mask.shape() == Shape({B, ctx.dim(1)}), W,
               "context_mask must be u8 [", B, ", ", ctx.dim(1), "], got ", c.context_mask.str());
      kv_mask = to_f32_mask(be, c.context_mask, dev);
    } else if (q_mask.defined()) {
      kv_mask = Tensor::full({B, ctx.dim(1)}, 1.f, dev);  // D9 corrected: all-true context mask
    }
  } else {
    Tensor kv3 = linear_matmul(be, c.gemm_precision, x, wkv_->value, false, true);  // [B, T, 2·HD]
    k4 = attn::split_heads(be, be.narrow(kv3, 2, 0, hd_), cfg_.heads);
    v4 = attn::split_heads(be, be.narrow(kv3, 2, hd_, hd_), cfg_.heads);
    kv_mask = q_mask;
  }
  std::int64_t Tk = k4.dim(2);
  SK_CHECK(Tk > 0 && Tk % cfg_.kv_bucket_size == 0, W, "key/value length ", Tk,
           " must be a positive multiple of the key bucket size ", cfg_.kv_bucket_size);
  Dims d = dims(x, Tk);
  if (hs_ > 0 && !cfg_.causal) {
    SK_CHECK(cfg_.n_sortcut <= d.nkb, W, "n_sortcut (", cfg_.n_sortcut, ") exceeds the number of key buckets (", d.nkb,
             ") (defect D4)");
    if (cfg_.use_simple_sort_net)
      SK_CHECK(T == cfg_.max_seq_len, W, "the non-causal simple sort net needs sequence length == max_seq_len (",
               cfg_.max_seq_len, "), got ", T);
  }
  if (hs_ > 0 && cfg_.causal && cfg_.use_simple_sort_net)
    SK_CHECK(d.nb <= cfg_.max_seq_len / cfg_.bucket_size, W, "sequence length ", T, " exceeds the ",
             cfg_.max_seq_len / cfg_.bucket_size, " buckets the causal simple sort net was built for (max_seq_len ",
             cfg_.max_seq_len, ")");
  st.Tk = Tk;

  std::vector<Tensor> outs;
  if (hl_ > 0) {
    float p = c.training ? cfg_.attn_dropout : 0.f;
    outs.push_back(local_attention_forward(be, be.narrow(q4, 1, 0, hl_), be.narrow(k4, 1, 0, hl_),
                                           be.narrow(v4, 1, 0, hl_), q_mask, cfg_.bucket_size, cfg_.causal, p,
                                           c.key(layer_id_, kSiteLocalAttnDropout, B), st.local, masks_));
  }
  if (hs_ > 0) {
    Tensor qs = hl_ ? be.narrow(q4, 1, hl_, hs_) : q4;
    Tensor ks = hl_ ? be.narrow(k4, 1, hl_, hs_) : k4;
    Tensor vs = hl_ ? be.narrow(v4, 1, hl_, hs_) : v4;
    outs.push_back(cfg_.causal ? causal_forward(qs, ks, vs, q_mask, d, st.sink, c)
                               : sinkhorn_forward(qs, ks, vs, q_mask, kv_mask, d, st.sink, c));
  }
  Tensor o4 = outs.size() == 1 ? outs[0] : be.concat(outs, 1);  // [B, H, T, dh]
  st.x = x;
  st.h = attn::merge_heads(be, o4);                             // [B, T, HD]
  Tensor y = be.add(linear_matmul(be, c.gemm_precision, st.h, wo_->value, false, true), bo_->value);  // [B, T, D]
  if (c.training && cfg_.dropout > 0.f) y = be.dropout(y, cfg_.dropout, c.key(layer_id_, kSiteOutputDropout, B));
  return y;
}

Tensor SinkhornSelfAttention::backward(const Tensor& dy_in, Stash& stash, const Context& c) {
  Backend& be = c.backend();
  AttentionStash& st = stash.get<AttentionStash>();
  const Tensor& x = st.x;
  SK_CHECK(x.defined(), "attention layer ", layer_id_, ": backward called without a forward on this stash");
  std::int64_t B = x.dim(0), T = x.dim(1), D = cfg_.dim;
  Tensor dy = (c.training && cfg_.dropout > 0.f)
                  ? be.dropout_backward(dy_in, cfg_.dropout, c.key(layer_id_, kSiteOutputDropout, B))
                  : dy_in;
  // to_out
  linear_gemm(be, c.gemm_precision, wo_->grad, dy.reshape({B * T, D}), st.h.reshape({B * T, hd_}), true, false, 1.f, 1.f);
  be.axpy(bo_->grad, be.reduce(dy.reshape({B * T, D}), 0, ReduceOp::sum));
  Tensor do4 = attn::split_heads(be, linear_matmul(be, c.gemm_precision, dy, wo_->value), cfg_.heads);  // [B, H, T, dh]

  Dims d = dims(x, st.Tk);
  std::vector<Tensor> dqs, dks, dvs;
  if (hl_ > 0) {
    float p = c.training ? cfg_.attn_dropout : 0.f;
    Tensor dol = be.narrow(do4, 1, 0, hl_);
    if (hs_ == 0) do4 = Tensor();
    QKVGrads g = local_attention_backward(be, dol, cfg_.bucket_size, cfg_.causal, p,
                                          c.key(layer_id_, kSiteLocalAttnDropout, B), st.local);
    dol = Tensor();
    dqs.push_back(g.dq);
    dks.push_back(g.dk);
    dvs.push_back(g.dv);
  }
  if (hs_ > 0) {
    Tensor dos = hl_ ? be.narrow(do4, 1, hl_, hs_) : do4;
    do4 = Tensor();
    QKVGrads g = cfg_.causal ? causal_backward(dos, d, st.sink, c) : sinkhorn_backward(dos, d, st.sink, c);
    dqs.push_back(g.dq);
    dks.push_back(g.dk);
    dvs.push_back(g.dv);
  }
  auto cat_heads = [&](const std::vector<Tensor>& v) { return v.size() == 1 ? v[0] : be.concat(v, 1); };
  Tensor dq3 = attn::merge_heads(be, cat_heads(dqs));  // [B, T, HD]
  dqs.clear();
  Tensor dk3 = attn::merge_heads(be, cat_heads(dks));  // [B, Tk, HD]
  dks.clear();
  Tensor dv3 = attn::merge_heads(be, cat_heads(dvs));
  dvs.clear();

  // to_q
  linear_gemm(be, c.gemm_precision, wq_->grad, dq3.reshape({B * T, hd_}), x.reshape({B * T, D}), true, false, 1.f, 1.f);
  Tensor dx = linear_matmul(be, c.gemm_precision, dq3, wq_->value);  // [B, T, D]
  dq3 = Tensor();
  if (cfg_.is_context) {
    if (c.dcontext != nullptr) {
      Tensor dctx = be.add(dk3, dv3);  // keys = values = context
      if (!c.dcontext->defined()) *c.dcontext = Tensor::zeros(dctx.shape(), DType::f32, dctx.device());
      SK_CHECK(c.dcontext->shape() == dctx.shape(), "attention layer ", layer_id_, ": dcontext must be ",
               shape_str(dctx.shape()), ", got ", c.dcontext->str());
      be.axpy(*c.dcontext, dctx);
    }
  } else {
    Tensor dkv3 = be.concat({dk3, dv3}, 2);  // [B, T, 2·HD]
    dk3 = Tensor();
    dv3 = Tensor();
    linear_gemm(be, c.gemm_precision, wkv_->grad, dkv3.reshape({B * T, 2 * hd_}), x.reshape({B * T, D}), true, false, 1.f, 1.f);
    dx = be.add(dx, linear_matmul(be, c.gemm_precision, dkv3, wkv_->value));
  }
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Non-causal sinkhorn heads (model-spec §11).
Tensor SinkhornSelfAttention::sinkhorn_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& q_mask,
                                               const Tensor& kv_mask, const Dims& d, SinkhornStash& s,
                                               const Context& c) const {
  Backend& be = c.backend();
  std::int64_t B = d.B, Hs = hs_, N = B * Hs, dh = dh_, bs = cfg_.bucket_size, kbs = cfg_.kv_bucket_size;
  bool sortcut = cfg_.n_sortcut > 0, own = d.nb == d.nkb;
  s.q = q;
  s.k = k;
  s.v = v;
  SortNetDims sd{B, Hs, dh, d.T, d.Tk, d.nb, d.nkb, 0, sortcut};
  Tensor R = sort_net_forward(be, sort_kind_, sd, q.reshape({N, d.T, dh}), k.reshape({N, d.Tk, dh}), linear_, s.sort);
  if (cfg_.non_permutative) {
    float tau = sort_kind_ == SortNetKind::attention ? 1.f : cfg_.temperature;  // D8
    s.sel = differentiable_topk(be, R, d.k, tau, s.topk);
  } else {
    s.r_sel = R;
    Tensor Rp = sort_kind_ == SortNetKind::attention ? be.unary(R, UnaryOp::relu) : R;
    s.sel = gumbel_sinkhorn(be, Rp, cfg_.sinkhorn_iter, cfg_.temperature, c.key(layer_id_, kSiteGumbel, d.B), s.gumbel);
  }
  Tensor kb = k.reshape({N, d.nkb, kbs * dh}), vb = v.reshape({N, d.nkb, kbs * dh});
  bool masked = q_mask.defined() || kv_mask.defined();
  Tensor qm, kmh, ones;
  if (masked) {
    qm = q_mask.defined() ? q_mask : Tensor::full({B, d.T}, 1.f, q.device());
    Tensor km = kv_mask.defined() ? kv_mask : qm;
    ones = Tensor::full({1, Hs, 1}, 1.f, q.device());
    kmh = be.mul(km.reshape({B, 1, d.Tk}), ones).reshape({N, d.nkb, kbs});  // key-bucket mask
  }
  // D14 corrected: the soft mixture of the gumbel path mixes only real keys/values (k·m, v·m).
  s.kv_keep = (masked && s.sel.dense()) ? kmh : Tensor();
  Tensor kmix = s.kv_keep.defined() ? mask_positions(be, kb, s.kv_keep) : kb;
  Tensor vmix = s.kv_keep.defined() ? mask_positions(be, vb, s.kv_keep) : vb;
  Tensor Ka = attn::group_sets(be, attn::select_buckets(be, kmix, s.sel), d.nb, sortcut, own ? kb : Tensor());
  Tensor Va = attn::group_sets(be, attn::select_buckets(be, vmix, s.sel), d.nb, sortcut, own ? vb : Tensor());
  std::int64_t S = Ka.dim(2) / dh;  // keys per query bucket

  s.attend = attn::AttendStash();
  if (masked) {
    // Top-k: the chosen bucket's mask. Gumbel (D14 corrected): a mixed slot is allowed iff its mixed
    // mask weight Σ_v P[u,v]·m[v,j] > 0, i.e. it contains a real key.
    Tensor chosen = s.sel.dense() ? positive_indicator(be, be.matmul(s.sel.P, kmh))
                                  : attn::gather_chosen(be, kmh, s.sel);
    Tensor mk = attn::group_sets(be, chosen, d.nb, sortcut, own ? kmh : Tensor());
    s.attend.q_keep = be.mul(qm.reshape({B, 1, d.T}), ones).reshape({N * d.nb, bs});  // query real
    s.attend.k_keep = mk.reshape({N * d.nb, S});  // key real (1 / 0)
  }
  float p = c.training ? cfg_.attn_dropout : 0.f;
  Tensor out = attn::attend(be, q.reshape({N * d.nb, bs, dh}), Ka.reshape({N * d.nb, S, dh}),
                            Va.reshape({N * d.nb, S, dh}), 1.f / std::sqrt(static_cast<float>(dh)), p,
                            c.key(layer_id_, kSiteSinkhornAttnDropout, d.B), s.attend);
  return out.reshape({B, Hs, d.T, dh});
}

QKVGrads SinkhornSelfAttention::sinkhorn_backward(const Tensor& dout, const Dims& d, SinkhornStash& s,
                                                  const Context& c) {
  Backend& be = c.backend();
  std::int64_t B = d.B, Hs = hs_, N = B * Hs, dh = dh_, bs = cfg_.bucket_size, kbs = cfg_.kv_bucket_size;
  bool sortcut = cfg_.n_sortcut > 0, own = d.nb == d.nkb;
  Tensor kb = s.k.reshape({N, d.nkb, kbs * dh}), vb = s.v.reshape({N, d.nkb, kbs * dh});
  bool mixmask = s.kv_keep.defined();  // D14 corrected: the mixture reads k·m, v·m
  Tensor kmix = mixmask ? mask_positions(be, kb, s.kv_keep) : kb;
  Tensor vmix = mixmask ? mask_positions(be, vb, s.kv_keep) : vb;
  // Recompute the assembled key/value sets (cheap gathers) instead of keeping them.
  Tensor Ka = attn::group_sets(be, attn::select_buckets(be, kmix, s.sel), d.nb, sortcut, own ? kb : Tensor());
  Tensor Va = attn::group_sets(be, attn::select_buckets(be, vmix, s.sel), d.nb, sortcut, own ? vb : Tensor());
  std::int64_t S = Ka.dim(2) / dh;

  float p = c.training ? cfg_.attn_dropout : 0.f;
  attn::AttendGrads g = attn::attend_backward(be, dout.reshape({N * d.nb, bs, dh}), s.q.reshape({N * d.nb, bs, dh}),
                                              Ka.reshape({N * d.nb, S, dh}), Va.reshape({N * d.nb, S, dh}),
                                              1.f / std::sqrt(static_cast<float>(dh)), p,
                                              c.key(layer_id_, kSiteSinkhornAttnDropout, d.B), s.attend);
  Tensor dq = g.dq.reshape({N, d.T, dh});

  Tensor dksel, dkown, dvsel, dvown;
  attn::group_sets_backward(be, g.dk.reshape({N, d.nb, S * dh}), d.nb, d.k, kbs * dh, sortcut, own, dksel, dkown);
  attn::group_sets_backward(be, g.dv.reshape({N, d.nb, S * dh}), d.nb, d.k, kbs * dh, sortcut, own, dvsel, dvown);
  Tensor dkb, dvb, dsel;
  if (mixmask) {
    // d(k·m) -> dk·m; the own-bucket part is unmasked.
    Tensor dkm = Tensor::zeros({N, d.nkb, kbs * dh}, DType::f32, dout.device());
    Tensor dvm = Tensor::zeros({N, d.nkb, kbs * dh}, DType::f32, dout.device());
    dsel = be.add(attn::select_buckets_backward(be, dkm, dksel, kmix, s.sel),
                  attn::select_buckets_backward(be, dvm, dvsel, vmix, s.sel));
    dkb = mask_positions(be, dkm, s.kv_keep);
    dvb = mask_positions(be, dvm, s.kv_keep);
    if (own) {
      dkb = be.add(dkb, dkown);
      dvb = be.add(dvb, dvown);
    }
  } else {
    dkb = own ? dkown : Tensor::zeros({N, d.nkb, kbs * dh}, DType::f32, dout.device());
    dvb = own ? dvown : Tensor::zeros({N, d.nkb, kbs * dh}, DType::f32, dout.device());
    dsel = be.add(attn::select_buckets_backward(be, dkb, dksel, kb, s.sel),
                  attn::select_buckets_backward(be, dvb, dvsel, vb, s.sel));
  }

  Tensor dR;
  if (cfg_.non_permutative) {
    dR = differentiable_topk_backward(be, dsel, s.topk);
  } else {
    dR = gumbel_sinkhorn_backward(be, dsel, s.gumbel);
    if (sort_kind_ == SortNetKind::attention) dR = be.unary_backward(dR, s.r_sel, {}, UnaryOp::relu);
  }
  SortNetDims sd{B, Hs, dh, d.T, d.Tk, d.nb, d.nkb, 0, sortcut};
  Tensor dqs, dks;
  sort_net_backward(be, sort_kind_, sd, dR, s.q.reshape({N, d.T, dh}), s.k.reshape({N, d.Tk, dh}), linear_, s.sort,
                    dqs, dks);
  QKVGrads r;
  r.dq = be.add(dq, dqs).reshape({B, Hs, d.T, dh});
  r.dk = be.add(dkb.reshape({N, d.Tk, dh}), dks).reshape({B, Hs, d.Tk, dh});
  r.dv = dvb.reshape({B, Hs, d.Tk, dh});
  return r;
}

// ---------------------------------------------------------------------------------------------
// Causal sinkhorn heads (model-spec §12).
Tensor SinkhornSelfAttention::causal_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                             const Dims& d, SinkhornStash& s, const Context& c) const {
  Backend& be = c.backend();
  std::int64_t B = d.B, Hs = hs_, N = B * Hs, dh = dh_, bs = cfg_.bucket_size, nb = d.nb, n_top = d.n_top;
  std::int64_t hh = Hs / 2;
  Device dev = q.device();
  // Half-head rotation: heads hh … Hs−1 rotated left by bs − 1.
  s.q = attn::roll_heads_from(be, q, hh, -(bs - 1));
  s.k = attn::roll_heads_from(be, k, hh, -(bs - 1));
  s.v = attn::roll_heads_from(be, v, hh, -(bs - 1));
  SortNetDims sd{B, Hs, dh, d.T, d.T, nb, nb, n_top, false};
  Tensor R = sort_net_forward(be, sort_kind_, sd, s.q.reshape({N, d.T, dh}), s.k.reshape({N, d.T, dh}), linear_,
                              s.sort);  // [N, nb, n_top + nb]
  s.keep_sel = masks_.get(kMaskCausalSelection, {nb, n_top}, dev, [&] { return causal_selection_keep(nb, n_top, dev); });
  s.r_sel = attn::overwrite_masked(be, R, s.keep_sel);  // current and future buckets -> M
  s.sel = differentiable_topk(be, s.r_sel, n_top, cfg_.temperature, s.topk);

  Tensor kb = s.k.reshape({N, nb, bs * dh}), vb = s.v.reshape({N, nb, bs * dh});
  Tensor ksrc = be.concat({null_buckets(be, null_k_->value, B, n_top, bs), kb}, 1);  // [N, n_top + nb, bs·dh]
  Tensor vsrc = be.concat({null_buckets(be, null_v_->value, B, n_top, bs), vb}, 1);
  Tensor Ka = attn::group_sets(be, attn::select_buckets(be, ksrc, s.sel), nb, false, kb);  // [N, nb, S·dh]
  Tensor Va = attn::group_sets(be, attn::select_buckets(be, vsrc, s.sel), nb, false, vb);
  std::int64_t S = (n_top + 1) * bs;

  s.attend = attn::AttendStash();
  s.attend.keep = masks_.get(kMaskCausalStructural, {Hs, hh, nb, bs, n_top}, dev,
                             [&] { return causal_structural_keep(Hs, hh, nb, bs, n_top, dev); });
  if (mask.defined()) {
    Tensor mh = be.mul(mask.reshape({B, 1, d.T, 1}), Tensor::full({1, Hs, 1, 1}, 1.f, dev));  // [B, Hs, T, 1]
    mh = attn::roll_heads_from(be, mh, hh, -(bs - 1)).reshape({N, nb, bs});
    Tensor msrc = be.pad(mh, 1, n_top, 0, 1.f);  // n_top all-true null buckets first (D2 corrected)
    Tensor mk = attn::group_sets(be, attn::gather_chosen(be, msrc, s.sel), nb, false, mh);  // [N, nb, S]
    s.attend.q_keep = mh.reshape({N * nb, bs});
    s.attend.k_keep = mk.reshape({N * nb, S});
  }
  float p = c.training ? cfg_.attn_dropout : 0.f;
  Tensor out = attn::attend(be, s.q.reshape({N * nb, bs, dh}), Ka.reshape({N * nb, S, dh}), Va.reshape({N * nb, S, dh}),
                            1.f / std::sqrt(static_cast<float>(dh)), p, c.key(layer_id_, kSiteSinkhornAttnDropout, d.B),
                            s.attend);
  return attn::roll_heads_from(be, out.reshape({B, Hs, d.T, dh}), hh, bs - 1);  // rotate back
}

QKVGrads SinkhornSelfAttention::causal_backward(const Tensor& dout_in, const Dims& d, SinkhornStash& s,
                                                const Context& c) {
  Backend& be = c.backend();
  std::int64_t B = d.B, Hs = hs_, N = B * Hs, dh = dh_, bs = cfg_.bucket_size, nb = d.nb, n_top = d.n_top;
  std::int64_t hh = Hs / 2;
  Device dev = dout_in.device();
  Tensor dout = attn::roll_heads_from(be, dout_in, hh, -(bs - 1));

  Tensor kb = s.k.reshape({N, nb, bs * dh}), vb = s.v.reshape({N, nb, bs * dh});
  Tensor ksrc = be.concat({null_buckets(be, null_k_->value, B, n_top, bs), kb}, 1);
  Tensor vsrc = be.concat({null_buckets(be, null_v_->value, B, n_top, bs), vb}, 1);
  Tensor Ka = attn::group_sets(be, attn::select_buckets(be, ksrc, s.sel), nb, false, kb);
  Tensor Va = attn::group_sets(be, attn::select_buckets(be, vsrc, s.sel), nb, false, vb);
  std::int64_t S = (n_top + 1) * bs;

  float p = c.training ? cfg_.attn_dropout : 0.f;
  attn::AttendGrads g = attn::attend_backward(be, dout.reshape({N * nb, bs, dh}), s.q.reshape({N * nb, bs, dh}),
                                              Ka.reshape({N * nb, S, dh}), Va.reshape({N * nb, S, dh}),
                                              1.f / std::sqrt(static_cast<float>(dh)), p,
                                              c.key(layer_id_, kSiteSinkhornAttnDropout, d.B), s.attend);
  // Free each buffer at its last use: the peak of a training step sits in this function.
  dout = Tensor();
  Ka = Tensor();
  Va = Tensor();
  Tensor dq = g.dq.reshape({N, d.T, dh});
  g.dq = Tensor();

  // Keys, then values: only one side's set gradients and source gradient are alive at a time.
  auto source_backward = [&](Tensor& dset, const Tensor& src, Tensor& grad_null, Tensor& dsrc_out) {
    Tensor dsel, down;
    attn::group_sets_backward(be, dset.reshape({N, nb, S * dh}), nb, n_top, bs * dh, false, true, dsel, down);
    dset = Tensor();
    Tensor dsrc = Tensor::zeros({N, n_top + nb, bs * dh}, DType::f32, dev);
    Tensor dv = attn::select_buckets_backward(be, dsrc, dsel, src, s.sel);
    dsel = Tensor();
    null_buckets_backward(be, grad_null, be.narrow(dsrc, 1, 0, n_top), B, bs);
    dsrc_out = be.add(be.narrow(dsrc, 1, n_top, nb), down);  // [N, nb, bs·dh]
    return dv;
  };
  Tensor dkb, dvb;
  Tensor dval_k = source_backward(g.dk, ksrc, null_k_->grad, dkb);
  ksrc = Tensor();
  Tensor dval_v = source_backward(g.dv, vsrc, null_v_->grad, dvb);
  vsrc = Tensor();
  Tensor dval = be.add(dval_k, dval_v);
  dval_k = Tensor();
  dval_v = Tensor();

  Tensor dR = attn::overwrite_masked_backward(be, differentiable_topk_backward(be, dval, s.topk), s.keep_sel);
  SortNetDims sd{B, Hs, dh, d.T, d.T, nb, nb, n_top, false};
  Tensor dqs, dks;
  sort_net_backward(be, sort_kind_, sd, dR, s.q.reshape({N, d.T, dh}), s.k.reshape({N, d.T, dh}), linear_, s.sort, dqs,
                    dks);
  dR = Tensor();
  QKVGrads r;
  if (dqs.defined()) dq = be.add(dq, dqs);
  dqs = Tensor();
  r.dq = attn::roll_heads_from(be, dq.reshape({B, Hs, d.T, dh}), hh, bs - 1);  // undo the rotation
  dq = Tensor();
  Tensor dk = be.add(dkb.reshape({N, d.T, dh}), dks);
  dkb = Tensor();
  dks = Tensor();
  r.dk = attn::roll_heads_from(be, dk.reshape({B, Hs, d.T, dh}), hh, bs - 1);
  dk = Tensor();
  r.dv = attn::roll_heads_from(be, dvb.reshape({B, Hs, d.T, dh}), hh, bs - 1);
  return r;
}

}  // namespace sk
