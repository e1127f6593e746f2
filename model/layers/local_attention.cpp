// local_attention.cpp — windowed local attention (model-spec §9), forward and backward.
#include "model/layers/local_attention.h"

#include <cmath>
#include <vector>

namespace sk {
namespace {

// x [N, nw, w·e] -> [N, nw, nwin·w·e]: windows u−1, u (, u+1) side by side; outside windows = pad.
Tensor look_around(Backend& be, const Tensor& x, std::int64_t look_ahead, float pad) {
  std::int64_t nw = x.dim(1);
  Tensor xp = be.pad(x, 1, 1, look_ahead, pad);  // [N, nw + 1 + la, w·e]
  std::vector<Tensor> pieces;
  for (std::int64_t i = 0; i < 2 + look_ahead; ++i) pieces.push_back(be.narrow(xp, 1, i, nw));
  return be.concat(pieces, 2);
}
// d(look_around) [N, nw, nwin·w·e] -> [N, nw, w·e] (the pad slots are constants).
Tensor look_around_backward(Backend& be, const Tensor& dy, std::int64_t look_ahead) {
  std::int64_t N = dy.dim(0), nw = dy.dim(1), nwin = 2 + look_ahead, c = dy.dim(2) / nwin;
  Tensor dxp = Tensor::zeros({N, nw + 1 + look_ahead, c}, DType::f32, dy.device());
  for (std::int64_t i = 0; i < nwin; ++i) be.narrow_assign(dxp, be.narrow(dy, 2, i * c, c), 1, i, true);
  return be.narrow(dxp, 1, 1, nw);
}

// Structural keep mask u8 [nw, w, W] (model-spec §9): slot j of window u's keys is key position
// (u − 1)·w + j; allowed when inside the sequence and, when causal, not after the query (j − w <= i).
Tensor structural_keep(std::int64_t nw, std::int64_t w, std::int64_t look_ahead, bool causal, Device dev) {
  std::int64_t W = (2 + look_ahead) * w;
  std::vector<std::uint8_t> m(static_cast<std::size_t>(nw * w * W));
  for (std::int64_t u = 0; u < nw; ++u)
    for (std::int64_t i = 0; i < w; ++i)
      for (std::int64_t j = 0; j < W; ++j) {
        std::int64_t win = u - 1 + j / w;
        bool inside = win >= 0 && win < nw;
        bool past = !causal || j - w <= i;
        m[static_cast<std::size_t>((u * w + i) * W + j)] = (inside && past) ? 1 : 0;
      }
  return attn::host_mask(m, {nw, w, W}, dev);
}

// [B, R, C] repeated over H heads -> [B·H·R, C] (row (b·H + h)·R + r).
Tensor repeat_heads(Backend& be, const Tensor& x, std::int64_t H) {
  std::int64_t B = x.dim(0), R = x.dim(1), C = x.dim(2);
  return be.mul(x.reshape({B, 1, R, C}), Tensor::full({1, H, 1, 1}, 1.f, x.device())).reshape({B * H * R, C});
}

// Keys / values of every window: [B, Hl, T, dh] -> [Nl·nw, W, dh].
Tensor windows_of(Backend& be, const Tensor& x, std::int64_t w, std::int64_t look_ahead) {
  std::int64_t Nl = x.dim(0) * x.dim(1), nw = x.dim(2) / w, dh = x.dim(3);
  return look_around(be, x.reshape({Nl, nw, w * dh}), look_ahead, -1.f).reshape({Nl * nw, (2 + look_ahead) * w, dh});
}

}  // namespace

Tensor local_attention_forward(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                               std::int64_t window, bool causal, float p_drop, RngKey key, LocalAttnStash& s,
                               attn::ConstMaskCache& masks) {
  std::int64_t B = q.dim(0), Hl = q.dim(1), T = q.dim(2), dh = q.dim(3);
  std::int64_t w = window, nw = T / w, la = causal ? 0 : 1, Nl = B * Hl;
  s.q = q;
  s.k = k;
  s.v = v;
  s.attend.keep = masks.get(0, {nw, w, la, causal ? 1 : 0}, q.device(),
                            [&] { return structural_keep(nw, w, la, causal, q.device()); });
  s.attend.q_keep = Tensor();
  s.attend.k_keep = Tensor();
  if (mask.defined()) {
    s.attend.q_keep = repeat_heads(be, mask.reshape({B, nw, w}), Hl);                          // [Nl·nw, w]
    s.attend.k_keep = repeat_heads(be, look_around(be, mask.reshape({B, nw, w}), la, 0.f), Hl);  // [Nl·nw, W]
  }
  Tensor out = attn::attend(be, q.reshape({Nl * nw, w, dh}), windows_of(be, k, w, la), windows_of(be, v, w, la),
                            1.f / std::sqrt(static_cast<float>(dh)), p_drop, key, s.attend);  // [Nl·nw, w, dh]
  return out.reshape({B, Hl, T, dh});
}

QKVGrads local_attention_backward(Backend& be, const Tensor& dout, std::int64_t window, bool causal, float p_drop,
                                  RngKey key, const LocalAttnStash& s) {
  std::int64_t B = dout.dim(0), Hl = dout.dim(1), T = dout.dim(2), dh = dout.dim(3);
  std::int64_t w = window, nw = T / w, la = causal ? 0 : 1, W = (2 + la) * w, Nl = B * Hl;
  // The windowed keys / values are recomputed (cheap copies) rather than kept.
  attn::AttendGrads g = attn::attend_backward(be, dout.reshape({Nl * nw, w, dh}), s.q.reshape({Nl * nw, w, dh}),
                                              windows_of(be, s.k, w, la), windows_of(be, s.v, w, la),
                                              1.f / std::sqrt(static_cast<float>(dh)), p_drop, key, s.attend);
  QKVGrads r;
  r.dq = g.dq.reshape({B, Hl, T, dh});
  r.dk = look_around_backward(be, g.dk.reshape({Nl, nw, W * dh}), la).reshape({B, Hl, T, dh});
  r.dv = look_around_backward(be, g.dv.reshape({Nl, nw, W * dh}), la).reshape({B, Hl, T, dh});
  return r;
}

}  // namespace sk
