// topk.cpp — differentiable top-k and gumbel-sinkhorn (see topk.h).
#include "model/layers/topk.h"

namespace sk {

attn::Selection differentiable_topk(Backend& be, const Tensor& x, std::int64_t k, float tau, TopKStash& s) {
  std::int64_t N = x.dim(0), rows = x.dim(1), m = x.dim(2), NR = N * rows;
  Device dev = x.device();
  s.tau = tau;
  s.p.clear();
  s.idx.clear();
  std::vector<Tensor> idx_r, val_r;
  Tensor cur = x;  // X_r: the copy of R the rounds exclude columns from
  for (std::int64_t r = 0; r < k; ++r) {
    Tensor p = be.softmax(cur, {}, 1.f / tau);                     // [N, rows, m]
    Tensor j = be.argmax(p).reshape({NR, 1});                      // i64 [NR, 1]
    Tensor v = be.gather_rows(p.reshape({NR, m, 1}), j);           // [NR, 1, 1] = p[j]
    s.p.push_back(p);
    s.idx.push_back(j);
    idx_r.push_back(j.reshape({N, rows, 1}));
    val_r.push_back(v.reshape({N, rows, 1}));
    if (r + 1 < k) {
      // keep = 1 − onehot(j): exclude the chosen column from the later rounds
      Tensor keep = Tensor::full({NR, m, 1}, 1.f, dev);
      be.scatter_add_rows(keep, Tensor::full({NR, 1, 1}, -1.f, dev), j);
      cur = attn::overwrite_masked(be, cur, keep.reshape({N, rows, m}));
    }
  }
  attn::Selection sel;
  sel.rows = rows;
  sel.k = k;
  sel.m = m;
  sel.idx = be.concat(idx_r, 2).reshape({N, rows * k});  // row i·k + r
  sel.val = be.concat(val_r, 2).reshape({N, rows * k});
  return sel;
}

Tensor differentiable_topk_backward(Backend& be, const Tensor& dval, const TopKStash& s) {
  const Tensor& p0 = s.p.front();
  std::int64_t N = p0.dim(0), rows = p0.dim(1), m = p0.dim(2), NR = N * rows;
  std::int64_t k = static_cast<std::int64_t>(s.p.size());
  Device dev = p0.device();
  Tensor dv3 = dval.reshape({N, rows, k});
  Tensor dx;
  // Columns excluded before round r have p == 0 there, so their gradient through round r is 0;
  // the exclusion itself passes the gradient of the remaining columns unchanged.
  for (std::int64_t r = k - 1; r >= 0; --r) {
    Tensor dvr = be.narrow(dv3, 2, r, 1).reshape({NR, 1, 1});
    Tensor dp = Tensor::zeros({NR, m, 1}, DType::f32, dev);
    be.scatter_add_rows(dp, dvr, s.idx[static_cast<std::size_t>(r)]);  // d value_r at column j_r
    Tensor dxr = be.softmax_backward(dp.reshape({N, rows, m}), s.p[static_cast<std::size_t>(r)], {}, 1.f / s.tau);
    dx = dx.defined() ? be.add(dx, dxr) : dxr;
  }
  return dx;  // [N, rows, m]
}

// ---------------------------------------------------------------------------------------------
attn::Selection gumbel_sinkhorn(Backend& be, const Tensor& r, std::int64_t iters, float tau, RngKey key,
                                GumbelStash& s) {
  constexpr float eps = 1e-6f;
  s.tau = tau;
  s.z_in.clear();
  s.lse_col.clear();
  s.a.clear();
  s.lse_row.clear();
  s.r_eps = be.unary(r, UnaryOp::add_scalar, eps);
  Tensor L = be.unary(s.r_eps, UnaryOp::log);  // log(R + eps)
  // g = −log(−log(U + eps) + eps)
  Tensor u = be.rand_uniform(r.shape(), key);
  Tensor g = be.unary(be.unary(u, UnaryOp::add_scalar, eps), UnaryOp::log);
  g = be.unary(be.unary(be.unary(g, UnaryOp::neg), UnaryOp::add_scalar, eps), UnaryOp::log);
  g = be.unary(g, UnaryOp::neg);
  Tensor z = be.scale(be.add(L, g), 1.f / tau);  // [N, rows, m]
  for (std::int64_t it = 0; it < iters; ++it) {
    Tensor lc = be.logsumexp(z, 2, true);        // [N, rows, 1]
    Tensor a = be.sub(z, lc);
    Tensor lr = be.logsumexp(a, 1, true);        // [N, 1, m]
    s.z_in.push_back(z);
    s.lse_col.push_back(lc);
    s.a.push_back(a);
    s.lse_row.push_back(lr);
    z = be.sub(a, lr);
  }
  s.P = be.unary(z, UnaryOp::exp);
  attn::Selection sel;
  sel.rows = r.dim(1);
  sel.k = 1;
  sel.m = r.dim(2);
  sel.P = s.P;  // no idx: masks are mixed with P as well (D14 corrected)
  return sel;
}

Tensor gumbel_sinkhorn_backward(Backend& be, const Tensor& dP, const GumbelStash& s) {
  Tensor dz = be.mul(dP, s.P);  // through exp
  for (std::size_t it = s.z_in.size(); it-- > 0;) {
    // z_out = a − lse_rows(a)
    Tensor sr = be.reduce(dz, 1, ReduceOp::sum, true);
    Tensor da = be.sub(dz, be.logsumexp_backward(sr, s.a[it], s.lse_row[it], 1, true));
    // a = z_in − lse_cols(z_in)
    Tensor sc = be.reduce(da, 2, ReduceOp::sum, true);
    dz = be.sub(da, be.logsumexp_backward(sc, s.z_in[it], s.lse_col[it], 2, true));
  }
  Tensor dL = be.scale(dz, 1.f / s.tau);
  return be.div(dL, s.r_eps);  // d log(R + eps)
}

}  // namespace sk
