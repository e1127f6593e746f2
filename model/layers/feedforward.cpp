#include "feedforward.h"

#include <algorithm>

namespace sk {

FeedForward::FeedForward(const FeedForwardConfig& cfg, ParamSet& ps, const std::string& prefix, std::uint64_t layer_id)
    : cfg_(cfg), layer_id_(layer_id) {
  SK_CHECK(cfg.dim > 0, "FeedForward: dim must be positive, got ", cfg.dim);
  SK_CHECK(cfg.chunks >= 1, "FeedForward: ff_chunks must be >= 1, got ", cfg.chunks);
  const std::int64_t D = cfg.dim;
  w1_ = Linear(ps, prefix + "w1.", D, (cfg.glu ? 8 : 4) * D, true);
  w2_ = Linear(ps, prefix + "w2.", 4 * D, D, true);
}

std::int64_t FeedForward::chunk_len(std::int64_t T, std::int64_t chunks) {
  return chunks <= 1 ? T : (T + chunks - 1) / chunks;
}

void FeedForward::hidden(const Tensor& xc, Tensor& pre, Tensor& h, std::int64_t chunk, const Context& c) const {
  Backend& be = c.backend();
  const std::int64_t F = 4 * cfg_.dim;
  LinearStash ls;
  pre = w1_.forward(xc, ls, be, c.gemm_precision);  // [B, t, F1]
  if (!cfg_.glu) {
    h = be.unary(pre, UnaryOp::gelu);  // [B, t, 4D]
  } else {
    Tensor a = be.narrow(pre, -1, 0, F);  // [B, t, 4D] gated half
    Tensor v = be.narrow(pre, -1, F, F);  // [B, t, 4D]
    h = be.mul(be.unary(a, UnaryOp::gelu), v);
  }
  const float p = c.training ? cfg_.dropout : 0.f;
  if (p > 0.f) h = be.dropout(h, p, c.key(layer_id_, static_cast<std::uint64_t>(chunk), h.dim(0)));
}

Tensor FeedForward::forward(const Tensor& x, Stash& s, const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(x.ndim() == 3 && x.dim(2) == cfg_.dim, "FeedForward: expected input [B, T, ", cfg_.dim, "], got ", x.str());
  auto& st = s.get<FeedForwardStash>();
  st = FeedForwardStash{};
  st.x = x;
  const std::int64_t T = x.dim(1);
  const std::int64_t len = chunk_len(T, cfg_.chunks);
  if (len >= T) {  // one chunk: keep the hidden activations for backward
    hidden(x, st.pre, st.h, 0, c);
    LinearStash l2;
    return w2_.forward(st.h, l2, be, c.gemm_precision);  // [B, T, D]
  }
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());  // [B, T, D]
  std::int64_t chunk = 0;
  for (std::int64_t start = 0; start < T; start += len, ++chunk) {
    const std::int64_t n = std::min(len, T - start);
    Tensor xc = be.narrow(x, 1, start, n);  // [B, t, D]
    Tensor pre, h;
    hidden(xc, pre, h, chunk, c);
    LinearStash l2;
    be.narrow_assign(y, w2_.forward(h, l2, be, c.gemm_precision), 1, start, false);
    if (chunk == 0 && c.recompute) {
      st.pre = pre;
      st.h = h;
    }
  }
  return y;
}

Tensor FeedForward::chunk_backward(const Tensor& dyc, const Tensor& xc, const Tensor& pre, const Tensor& h,
                                   std::int64_t chunk, const Context& c) {
  Backend& be = c.backend();
  const std::int64_t F = 4 * cfg_.dim;
  LinearStash l2{h};
  Tensor dh = w2_.backward(dyc, l2, be, c.gemm_precision);  // [B, t, 4D]
  const float p = c.training ? cfg_.dropout : 0.f;
  if (p > 0.f) dh = be.dropout_backward(dh, p, c.key(layer_id_, static_cast<std::uint64_t>(chunk), dh.dim(0)));
  Tensor dpre;
  if (!cfg_.glu) {
    dpre = be.unary_backward(dh, pre, Tensor(), UnaryOp::gelu);  // [B, t, 4D]
  } else {
    Tensor a = be.narrow(pre, -1, 0, F);
    Tensor v = be.narrow(pre, -1, F, F);
    Tensor da = be.unary_backward(be.mul(dh, v), a, Tensor(), UnaryOp::gelu);  // d/da GELU(a)·v
    Tensor dv = be.mul(dh, be.unary(a, UnaryOp::gelu));                         // GELU(a)
    dpre = be.concat({da, dv}, -1);                                              // [B, t, 8D]
  }
  LinearStash l1{xc};
  return w1_.backward(dpre, l1, be, c.gemm_precision);  // [B, t, D]
}

Tensor FeedForward::backward(const Tensor& dfx, Stash& s, const Context& c) {
  Backend& be = c.backend();
  auto& st = s.get<FeedForwardStash>();
  SK_ASSERT(st.x.defined(), "FeedForward::backward without forward");
  const std::int64_t T = st.x.dim(1);
  const std::int64_t len = chunk_len(T, cfg_.chunks);
  Tensor dx;
  if (len >= T) {
    dx = chunk_backward(dfx, st.x, st.pre, st.h, 0, c);
  } else {
    dx = Tensor::empty(st.x.shape(), DType::f32, st.x.device());  // [B, T, D]
    std::int64_t chunk = 0;
    for (std::int64_t start = 0; start < T; start += len, ++chunk) {
      const std::int64_t n = std::min(len, T - start);
      Tensor xc = be.narrow(st.x, 1, start, n);  // [B, t, D]
      Tensor pre, h;
      if (chunk == 0 && st.pre.defined()) {  // kept by a recomputing forward
        pre = std::move(st.pre);
        h = std::move(st.h);
        st.pre = Tensor();
        st.h = Tensor();
      } else {
        hidden(xc, pre, h, chunk, c);  // recompute this chunk only
      }
      Tensor dxc = chunk_backward(be.narrow(dfx, 1, start, n), xc, pre, h, chunk, c);
      be.narrow_assign(dx, dxc, 1, start, false);
    }
  }
  st = FeedForwardStash{};
  return dx;
}

}  // namespace sk
