// sort_net.cpp — the sort nets of model-spec §11.1, §11.2, §12.2, §12.3, forward and backward.
#include "model/layers/sort_net.h"

#include <cmath>
#include <vector>

namespace sk {
namespace {

// [1, T, 1] holding 1 … T: cumavg(z) = cumsum(z) / pos.
Tensor positions(std::int64_t T, Device dev) {
  std::vector<float> v(static_cast<std::size_t>(T));
  for (std::int64_t t = 0; t < T; ++t) v[static_cast<std::size_t>(t)] = static_cast<float>(t + 1);
  return attn::host_tensor(v, {1, T, 1}, dev);
}

// linear [1, Hs, 2dh, C] repeated over the batch -> [N, 2dh, C] (row b·Hs + h uses linear[0, h]).
Tensor batch_weights(Backend& be, const Tensor& w, std::int64_t B) {
  std::vector<Tensor> copies(static_cast<std::size_t>(B), w);
  Tensor wb = be.concat(copies, 0);  // [B, Hs, 2dh, C]
  return wb.reshape({B * w.dim(1), w.dim(2), w.dim(3)});
}

// d(batch_weights) [N, 2dh, C] -> summed over the batch, [1, Hs, 2dh, C].
Tensor batch_weights_backward(Backend& be, const Tensor& dw, std::int64_t B, std::int64_t Hs) {
  Tensor s = be.reduce(dw.reshape({B, dw.numel() / B}), 0, ReduceOp::sum, false);
  return s.reshape({1, Hs, dw.dim(1), dw.dim(2)});
}

// First position of every bucket: z [N, T, e] -> [N, nb, e]; and its scatter back.
Tensor bucket_starts(Backend& be, const Tensor& z, std::int64_t nb) {
  std::int64_t N = z.dim(0), T = z.dim(1), e = z.dim(2);
  return be.narrow(z.reshape({N, nb, T / nb, e}), 2, 0, 1).reshape({N, nb, e});
}
Tensor bucket_starts_backward(Backend& be, const Tensor& dz, std::int64_t T) {
  std::int64_t N = dz.dim(0), nb = dz.dim(1), e = dz.dim(2);
  Tensor full = Tensor::zeros({N, nb, T / nb, e}, DType::f32, dz.device());
  be.narrow_assign(full, dz.reshape({N, nb, 1, e}), 2, 0, false);
  return full.reshape({N, T, e});
}

// cumavg along axis 1 of [N, T, e], and its backward (reverse cumsum of dy / pos).
Tensor cumavg(Backend& be, const Tensor& z, const Tensor& pos) { return be.div(be.cumsum(z, 1), pos); }
Tensor cumavg_backward(Backend& be, const Tensor& dy, const Tensor& pos) {
  return be.cumsum(be.div(dy, pos), 1, true);
}

}  // namespace

Tensor sort_net_forward(Backend& be, SortNetKind kind, const SortNetDims& d, const Tensor& q, const Tensor& k,
                        const Parameter* linear, SortNetStash& s) {
  std::int64_t N = d.B * d.Hs, dh = d.dh;
  float alpha = 1.f / std::sqrt(static_cast<float>(dh));
  switch (kind) {
    case SortNetKind::attention: {
      std::int64_t rows = d.sortcut ? 1 : d.nb;
      s.sq = be.reduce(q.reshape({N, rows, d.T / rows, dh}), 2, ReduceOp::mean);    // [N, rows, dh]
      s.sk = be.reduce(k.reshape({N, d.nkb, d.Tk / d.nkb, dh}), 2, ReduceOp::mean);  // [N, nkb, dh]
      return be.matmul(s.sq, s.sk, false, true, alpha);                               // [N, rows, nkb]
    }
    case SortNetKind::simple: {
      Tensor sq = be.reduce(q.reshape({N, d.nkb, d.T / d.nkb, dh}), 2, ReduceOp::sum);  // [N, nkb, dh]
      Tensor sk = be.reduce(k.reshape({N, d.nkb, d.Tk / d.nkb, dh}), 2, ReduceOp::sum);
      s.feat = be.concat({sq, sk}, 2);                        // [N, nkb, 2dh] (query sum first)
      s.w = batch_weights(be, linear->value, d.B);            // [N, 2dh, MB]
      s.r_pre = be.matmul(s.feat, s.w);                       // [N, nkb, MB]
      s.r = be.unary(s.r_pre, UnaryOp::relu);
      return s.r;
    }
    case SortNetKind::causal_attention: {
      Tensor pos = positions(d.T, q.device());
      s.sq = bucket_starts(be, cumavg(be, q, pos), d.nb);                          // [N, nb, dh]
      Tensor ck = cumavg(be, k, pos);                                              // [N, T, dh]
      Tensor skr = be.reduce(ck.reshape({N, d.nb, d.T / d.nb, dh}), 2, ReduceOp::sum);  // [N, nb, dh]
      s.sk = be.pad(skr, 1, d.n_top, 0, 0.f);                                      // [N, n_top + nb, dh]
      return be.matmul(s.sq, s.sk, false, true, alpha);                            // [N, nb, n_top + nb]
    }
    case SortNetKind::causal_simple: {
      Tensor pos = positions(d.T, q.device());
      Tensor f1 = bucket_starts(be, cumavg(be, k, pos), d.nb);  // [N, nb, dh]
      Tensor f2 = bucket_starts(be, k, d.nb);                    // [N, nb, dh]
      s.feat = be.concat({f1, f2}, 2);                           // [N, nb, 2dh]
      Tensor wn = be.narrow(linear->value, 3, 0, d.nb + d.n_top);  // [1, Hs, 2dh, nb + n_top]
      s.w = batch_weights(be, wn, d.B);                          // [N, 2dh, nb + n_top]
      s.r_pre = be.matmul(s.feat, s.w);                          // [N, nb, nb + n_top]
      s.r = be.unary(s.r_pre, UnaryOp::leaky_relu, 0.01f);
      return s.r;
    }
  }
  SK_ASSERT(false, "unknown sort net kind");
  return {};
}

void sort_net_backward(Backend& be, SortNetKind kind, const SortNetDims& d, const Tensor& dR, const Tensor& q,
                       const Tensor& k, Parameter* linear, const SortNetStash& s, Tensor& dq, Tensor& dk) {
  std::int64_t N = d.B * d.Hs, dh = d.dh;
  float alpha = 1.f / std::sqrt(static_cast<float>(dh));
  switch (kind) {
    case SortNetKind::attention: {
      std::int64_t rows = d.sortcut ? 1 : d.nb;
      Tensor dsq = be.matmul(dR, s.sk, false, false, alpha);  // [N, rows, dh]
      Tensor dsk = be.matmul(dR, s.sq, true, false, alpha);   // [N, nkb, dh]
      dq = be.reduce_backward(dsq, q.reshape({N, rows, d.T / rows, dh}), {}, 2, ReduceOp::mean).reshape({N, d.T, dh});
      dk = be.reduce_backward(dsk, k.reshape({N, d.nkb, d.Tk / d.nkb, dh}), {}, 2, ReduceOp::mean)
               .reshape({N, d.Tk, dh});
      return;
    }
    case SortNetKind::simple: {
      Tensor dpre = be.unary_backward(dR, s.r_pre, s.r, UnaryOp::relu);
      Tensor dfeat = be.matmul(dpre, s.w, false, true);  // [N, nkb, 2dh]
      Tensor dw = be.matmul(s.feat, dpre, true, false);  // [N, 2dh, MB]
      be.axpy(linear->grad, batch_weights_backward(be, dw, d.B, d.Hs));
      Tensor dsq = be.narrow(dfeat, 2, 0, dh), dsk = be.narrow(dfeat, 2, dh, dh);
      dq = be.reduce_backward(dsq, q.reshape({N, d.nkb, d.T / d.nkb, dh}), {}, 2, ReduceOp::sum).reshape({N, d.T, dh});
      dk = be.reduce_backward(dsk, k.reshape({N, d.nkb, d.Tk / d.nkb, dh}), {}, 2, ReduceOp::sum)
               .reshape({N, d.Tk, dh});
      return;
    }
    case SortNetKind::causal_attention: {
      Tensor pos = positions(d.T, q.device());
      Tensor dsq = be.matmul(dR, s.sk, false, false, alpha);                         // [N, nb, dh]
      Tensor dsk = be.narrow(be.matmul(dR, s.sq, true, false, alpha), 1, d.n_top, d.nb);  // null rows: constant
      Tensor dck = be.reduce_backward(dsk, k.reshape({N, d.nb, d.T / d.nb, dh}), {}, 2, ReduceOp::sum);
      dk = cumavg_backward(be, dck.reshape({N, d.T, dh}), pos);
      dq = cumavg_backward(be, bucket_starts_backward(be, dsq, d.T), pos);
      return;
    }
    case SortNetKind::causal_simple: {
      Tensor pos = positions(d.T, q.device());
      Tensor dpre = be.unary_backward(dR, s.r_pre, s.r, UnaryOp::leaky_relu, 0.01f);
      Tensor dfeat = be.matmul(dpre, s.w, false, true);  // [N, nb, 2dh]
      Tensor dw = be.matmul(s.feat, dpre, true, false);  // [N, 2dh, nb + n_top]
      be.narrow_assign(linear->grad, batch_weights_backward(be, dw, d.B, d.Hs), 3, 0, true);
      Tensor df1 = be.narrow(dfeat, 2, 0, dh), df2 = be.narrow(dfeat, 2, dh, dh);
      dk = be.add(bucket_starts_backward(be, df2, d.T),
                  cumavg_backward(be, bucket_starts_backward(be, df1, d.T), pos));
      dq = Tensor();
      return;
    }
  }
  SK_ASSERT(false, "unknown sort net kind");
}

}  // namespace sk
