#include "pkm.h"

#include <cmath>
#include <vector>

namespace sk {

namespace {
constexpr float kBnEps = 1e-5f;
constexpr float kBnMomentum = 0.1f;
}  // namespace

PKM::PKM(const PKMConfig& cfg, ParamSet& ps, const std::string& prefix) : cfg_(cfg) {
  SK_CHECK(cfg.dim % cfg.heads == 0, "PKM: dim ", cfg.dim, " must be divisible by the number of heads ", cfg.heads);
  SK_CHECK(cfg.num_keys >= cfg.topk, "PKM: num_keys ", cfg.num_keys, " must be >= topk ", cfg.topk);
  SK_CHECK(cfg.dim_head % 2 == 0, "PKM: dim_head must be even, got ", cfg.dim_head);
  const std::int64_t Q = cfg.heads * cfg.dim_head;
  to_queries_ = Linear(ps, prefix + "to_queries.", cfg.dim, Q, false);
  bn_w_ = ps.add(prefix + "norm.fn.weight", {Q}, Init::Ones(), ParamGroup::no_decay);
  bn_b_ = ps.add(prefix + "norm.fn.bias", {Q}, Init::Zeros(), ParamGroup::no_decay);
  running_mean_ = ps.add_buffer(prefix + "norm.fn.running_mean", Tensor::zeros({Q}, DType::f32));
  running_var_ = ps.add_buffer(prefix + "norm.fn.running_var", Tensor::full({Q}, 1.f));
  num_batches_ = ps.add_buffer(prefix + "norm.fn.num_batches_tracked", Tensor::zeros({}, DType::i64));
  keys_ = ps.add(prefix + "keys", {cfg.heads, cfg.num_keys, 2, cfg.dim_head / 2},
                 Init::Normal(1.f / std::sqrt(static_cast<float>(cfg.dim_head / 2))));
  values_ = ps.add(prefix + "values.weight", {cfg.num_keys * cfg.num_keys, cfg.dim},
                   Init::Normal(1.f / std::sqrt(static_cast<float>(cfg.dim))), ParamGroup::pkm_values);
}

Tensor PKM::forward(const Tensor& x, Stash& s, const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(x.ndim() == 3 && x.dim(2) == cfg_.dim, "PKM: expected input [B, T, ", cfg_.dim, "], got ", x.str());
  auto& st = s.get<PKMStash>();
  st = PKMStash{};
  const std::int64_t B = x.dim(0), T = x.dim(1), R = B * T, D = cfg_.dim;
  const std::int64_t H = cfg_.heads, K = cfg_.topk, nk = cfg_.num_keys, dk = cfg_.dim_head / 2, Q = H * cfg_.dim_head;

  // 1-2. queries and BatchNorm1d over the R positions.
  Tensor q = to_queries_.forward(x, st.to_q, be, c.gemm_precision).reshape({R, Q});  // [R, 1024]
  st.batch_stats = c.training;
  if (c.training) {
    SK_CHECK(R > 1, "PKM: training-mode BatchNorm needs more than one position, got ", R);
    Tensor mean = be.reduce(q, 0, ReduceOp::mean);                        // [1024]
    Tensor xc = be.sub(q, mean);                                          // [R, 1024]
    Tensor var = be.reduce(be.unary(xc, UnaryOp::square), 0, ReduceOp::mean);  // biased [1024]
    st.rstd = be.unary(be.unary(var, UnaryOp::add_scalar, kBnEps), UnaryOp::rsqrt);
    st.xhat = be.mul(xc, st.rstd);
    if (!c.recompute) {  // once per forward (D7 corrected)
      const float unbias = static_cast<float>(R) / static_cast<float>(R - 1);
      Tensor rm = be.add(be.scale(running_mean_->value, 1.f - kBnMomentum), be.scale(mean, kBnMomentum));
      Tensor rv = be.add(be.scale(running_var_->value, 1.f - kBnMomentum), be.scale(var, kBnMomentum * unbias));
      running_mean_->value.copy_from(rm);
      running_var_->value.copy_from(rv);
      std::vector<std::int64_t> n = num_batches_->value.to_vector<std::int64_t>();
      n[0] += 1;
      num_batches_->value.copy_from(Tensor::from_vector(n, num_batches_->value.shape(), num_batches_->value.device()));
    }
  } else {
    st.rstd = be.unary(be.unary(running_var_->value, UnaryOp::add_scalar, kBnEps), UnaryOp::rsqrt);
    st.xhat = be.mul(be.sub(q, running_mean_->value), st.rstd);
  }
  Tensor qn = be.add(be.mul(st.xhat, bn_w_->value), bn_b_->value);  // [R, 1024]

  // 3. scores per (head, half): channel p·512 + h·128 + d.
  st.qh = be.permute(qn.reshape({R, 2, H, dk}), {2, 1, 0, 3});              // [H, 2, R, dk]
  Tensor kp = be.permute(keys_->value, {0, 2, 1, 3});                        // [H, 2, nk, dk]
  Tensor scores = be.matmul(st.qh, kp, false, true);                         // [H, 2, R, nk]

  // 4-5. top K sub-keys per half, then the K·K candidate pairs.
  TopKOut sub = be.topk(scores, K);  // [H, 2, R, K]
  st.idx = sub.indices;
  Tensor a0 = be.narrow(sub.values, 1, 0, 1).reshape({H, R, K, 1});
  Tensor a1 = be.narrow(sub.values, 1, 1, 1).reshape({H, R, 1, K});
  Tensor cand = be.add(a0, a1).reshape({H * R, K * K});                      // [H·R, K·K], α·K + β
  // Candidate memory rows i_0[α]·nk + i_1[β], exact in f32 (nk² < 2^24 is validated).
  Tensor f0 = be.scale(be.cast(be.narrow(sub.indices, 1, 0, 1), DType::f32), static_cast<float>(nk)).reshape({H, R, K, 1});
  Tensor f1 = be.cast(be.narrow(sub.indices, 1, 1, 1), DType::f32).reshape({H, R, 1, K});
  Tensor cand_idx = be.add(f0, f1).reshape({H * R, K * K, 1});               // [H·R, K·K, 1]

  // 6-7. top K candidates and their softmax weights.
  TopKOut fin = be.topk(cand, K);                                            // [H·R, K]
  st.final_idx = fin.indices;
  st.vidx = be.cast(be.gather_rows(cand_idx, fin.indices), DType::i64).reshape({H, R, K});  // [H, R, K]
  st.w = be.softmax(fin.values).reshape({H, R, K});                          // [H, R, K]

  // 8. weighted sum of value rows over all heads.
  Tensor out = Tensor::zeros({R, 1, D}, DType::f32, x.device());
  for (std::int64_t h = 0; h < H; ++h) {
    Tensor rows = be.embedding(values_->value, st.vidx.select0(h));         // [R, K, D]
    Tensor wh = st.w.select0(h).reshape({R, 1, K});                          // [R, 1, K]
    be.gemm(out, wh, rows, false, false, 1.f, 1.f);                          // [R, 1, D] +=
  }
  return out.reshape({B, T, D});
}

Tensor PKM::backward(const Tensor& dfx, Stash& s, const Context& c) {
  Backend& be = c.backend();
  auto& st = s.get<PKMStash>();
  SK_ASSERT(st.w.defined(), "PKM::backward without forward");
  const std::int64_t B = dfx.dim(0), T = dfx.dim(1), R = B * T, D = cfg_.dim;
  const std::int64_t H = cfg_.heads, K = cfg_.topk, nk = cfg_.num_keys, Q = H * cfg_.dim_head;
  Tensor dout = dfx.reshape({R, D});

  // 8. values rows and weights.
  std::vector<Tensor> dws;
  for (std::int64_t h = 0; h < H; ++h) {
    Tensor ids = st.vidx.select0(h);                                          // [R, K]
    Tensor rows = be.embedding(values_->value, ids);                          // [R, K, D]
    dws.push_back(be.matmul(rows, dout.reshape({R, D, 1})).reshape({1, R, K}));  // dw_h [1, R, K]
    Tensor drows = be.mul(st.w.select0(h).reshape({R, K, 1}), dout.reshape({R, 1, D}));  // [R, K, D]
    be.embedding_backward(values_->grad, drows, ids);
  }
  Tensor dw = be.concat(dws, 0).reshape({H * R, K});                          // [H·R, K]

  // 7-6. softmax, then back to the K·K candidates and the two halves' sub-key scores.
  Tensor dfin = be.softmax_backward(dw, st.w.reshape({H * R, K}));            // [H·R, K]
  Tensor dcand = Tensor::zeros({H * R, K * K, 1}, DType::f32, dfx.device());
  be.scatter_add_rows(dcand, dfin.reshape({H * R, K, 1}), st.final_idx);
  Tensor dc4 = dcand.reshape({H, R, K, K});
  Tensor da[2] = {be.reduce(dc4, 3, ReduceOp::sum), be.reduce(dc4, 2, ReduceOp::sum)};  // [H, R, K] each
  std::vector<Tensor> dhalves;
  for (int p = 0; p < 2; ++p) {
    Tensor ds = Tensor::zeros({H * R, nk, 1}, DType::f32, dfx.device());
    Tensor ip = be.narrow(st.idx, 1, p, 1).reshape({H * R, K});
    be.scatter_add_rows(ds, da[p].reshape({H * R, K, 1}), ip);
    dhalves.push_back(ds.reshape({H, 1, R, nk}));
  }
  Tensor dscores = be.concat(dhalves, 1);                                     // [H, 2, R, nk]

  // 3. scores = qh · kpᵀ.
  Tensor kp = be.permute(keys_->value, {0, 2, 1, 3});                         // [H, 2, nk, dk]
  Tensor dqh = be.matmul(dscores, kp);                                        // [H, 2, R, dk]
  Tensor dkp = be.matmul(dscores, st.qh, true, false);                        // [H, 2, nk, dk]
  be.axpy(keys_->grad, be.permute(dkp, {0, 2, 1, 3}));                        // [H, nk, 2, dk]
  Tensor dqn = be.permute(dqh, {2, 1, 0, 3}).reshape({R, Q});                 // [R, 1024]

  // 2. BatchNorm affine, then normalisation.
  be.axpy(bn_w_->grad, be.sum_to(be.mul(dqn, st.xhat), {Q}));
  be.axpy(bn_b_->grad, be.sum_to(dqn, {Q}));
  Tensor dxhat = be.mul(dqn, bn_w_->value);                                   // [R, 1024]
  Tensor dq;
  if (st.batch_stats) {
    // dq = rstd · (dxhat − mean(dxhat) − xhat · mean(dxhat ⊙ xhat))
    Tensor m1 = be.reduce(dxhat, 0, ReduceOp::mean);                          // [1024]
    Tensor m2 = be.reduce(be.mul(dxhat, st.xhat), 0, ReduceOp::mean);         // [1024]
    dq = be.mul(be.sub(be.sub(dxhat, m1), be.mul(st.xhat, m2)), st.rstd);
  } else {
    dq = be.mul(dxhat, st.rstd);
  }
  Tensor dx = to_queries_.backward(dq.reshape({B, T, Q}), st.to_q, be, c.gemm_precision);       // [B, T, D]
  st = PKMStash{};
  return dx;
}

}  // namespace sk
