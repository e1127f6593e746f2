// attention_ops.cpp — see attention_ops.h. Forward and backward of each piece side by side.
#include "model/layers/attention_ops.h"

namespace sk::attn {

Tensor keep_product(Backend& be, const std::vector<Tensor>& factors) {
  Tensor k;
  for (const Tensor& f : factors) k = k.defined() ? be.mul(k, f) : f;
  return k;
}

Tensor overwrite_masked(Backend& be, const Tensor& x, const Tensor& keep) {
  Tensor bias = be.scale(be.unary(keep, UnaryOp::add_scalar, -1.f), kFltMax);  // 0 or −FLT_MAX
  return be.add(be.mul(x, keep), bias);
}

Tensor overwrite_masked_backward(Backend& be, const Tensor& dy, const Tensor& keep) { return be.mul(dy, keep); }

// ---------------------------------------------------------------------------------------------
Tensor attend(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale, float p_drop, RngKey key,
              const AttendStash& s) {
  return be.attention(q, k, v, s.keep, s.q_keep, s.k_keep, scale, p_drop, key);
}

AttendGrads attend_backward(Backend& be, const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                            float scale, float p_drop, RngKey key, const AttendStash& s) {
  Backend::AttentionGrads g = be.attention_backward(dout, q, k, v, s.keep, s.q_keep, s.k_keep, scale, p_drop, key);
  return {g.dq, g.dk, g.dv};
}

// ---------------------------------------------------------------------------------------------
Tensor split_heads(Backend& be, const Tensor& x, std::int64_t heads) {
  std::int64_t B = x.dim(0), T = x.dim(1), e = x.dim(2) / heads;
  return be.permute(x.reshape({B, T, heads, e}), {0, 2, 1, 3});  // [B, H, T, e]
}

Tensor merge_heads(Backend& be, const Tensor& x) {
  std::int64_t B = x.dim(0), H = x.dim(1), T = x.dim(2), e = x.dim(3);
  return be.permute(x, {0, 2, 1, 3}).reshape({B, T, H * e});  // [B, T, H·e]
}

Tensor roll_heads_from(Backend& be, const Tensor& x, std::int64_t hh, std::int64_t shift) {
  std::int64_t H = x.dim(1);
  if (shift == 0 || hh >= H) return x;
  if (hh == 0) return be.roll(x, 2, shift);
  Tensor keep = be.narrow(x, 1, 0, hh);
  Tensor rolled = be.roll(be.narrow(x, 1, hh, H - hh), 2, shift);
  return be.concat({keep, rolled}, 1);
}

// ---------------------------------------------------------------------------------------------
Tensor select_buckets(Backend& be, const Tensor& src, const Selection& sel) {
  if (sel.dense()) return be.matmul(sel.P, src);  // [N, rows, m] x [N, m, C] -> [N, rows, C]
  std::int64_t N = src.dim(0), R = sel.idx.dim(1);
  Tensor g = be.gather_rows(src, sel.idx);        // [N, R, C]
  return be.mul(g, sel.val.reshape({N, R, 1}));   // scaled by the selection probability
}

Tensor select_buckets_backward(Backend& be, Tensor& dsrc, const Tensor& dsel, const Tensor& src, const Selection& sel) {
  if (sel.dense()) {
    Tensor dP = be.matmul(dsel, src, false, true);  // [N, rows, m]
    be.gemm(dsrc, sel.P, dsel, true, false, 1.f, 1.f);  // dsrc += Pᵀ·dsel
    return dP;
  }
  std::int64_t N = src.dim(0), R = sel.idx.dim(1);
  Tensor g = be.gather_rows(src, sel.idx);  // [N, R, C]
  auto [dg, dval] = be.binary_backward(dsel, g, sel.val.reshape({N, R, 1}), BinaryOp::mul);
  be.scatter_add_rows(dsrc, dg, sel.idx);
  return dval.reshape({N, R});
}

Tensor gather_chosen(Backend& be, const Tensor& src, const Selection& sel) { return be.gather_rows(src, sel.idx); }

Tensor group_sets(Backend& be, const Tensor& sel, std::int64_t nb, bool sortcut, const Tensor& own) {
  std::int64_t N = sel.dim(0), R = sel.dim(1), C = sel.dim(2);
  Tensor g;
  if (sortcut) {
    Tensor zeros = Tensor::zeros({N, nb}, DType::i64, sel.device());
    g = be.gather_rows(sel.reshape({N, 1, R * C}), zeros);  // [N, nb, R·C]: the same set everywhere
  } else {
    g = sel.reshape({N, nb, (R / nb) * C});  // [N, nb, k·C]
  }
  if (own.defined()) g = be.concat({g, own.reshape({N, nb, own.numel() / (N * nb)})}, 2);
  return g;
}

void group_sets_backward(Backend& be, const Tensor& dset, std::int64_t nb, std::int64_t k, std::int64_t C, bool sortcut,
                         bool has_own, Tensor& dsel, Tensor& down) {
  std::int64_t N = dset.dim(0);
  Tensor dg = has_own ? be.narrow(dset, 2, 0, k * C) : dset;  // [N, nb, k·C]
  if (has_own) down = be.narrow(dset, 2, k * C, C);          // [N, nb, C]
  if (sortcut) dsel = be.reduce(dg, 1, ReduceOp::sum, true).reshape({N, k, C});
  else dsel = dg.reshape({N, nb * k, C});
}

Tensor host_tensor(const std::vector<float>& v, const Shape& shape, Device dev) {
  return Tensor::from_vector(v, shape, dev);
}

Tensor host_mask(const std::vector<std::uint8_t>& v, const Shape& shape, Device dev) {
  return Tensor::from_vector(v, shape, dev);
}

}  // namespace sk::attn
