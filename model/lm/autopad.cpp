#include "autopad.h"

#include <numeric>

namespace sk {

Padded autopad_inputs(const Tensor& x, const Context& c, std::int64_t multiple, std::int64_t context_multiple,
                      bool pad_left) {
  Backend& be = c.backend();
  Padded p;
  p.ctx = c;
  const std::int64_t B = x.dim(0), T = x.dim(1);
  p.pad = (T + multiple - 1) / multiple * multiple - T;
  if (p.pad > 0) {
    p.x = be.pad(x, 1, pad_left ? p.pad : 0, pad_left ? 0 : p.pad, 0.f);
    Tensor mask = c.input_mask;
    if (!mask.defined()) {
      mask = Tensor::empty({B, T}, DType::u8, x.device());
      be.fill(mask, 1.f);
    }
    p.ctx.input_mask = be.pad(mask, 1, pad_left ? p.pad : 0, pad_left ? 0 : p.pad, 0.f);
  } else {
    p.x = x;
  }
  if (c.context.defined()) {
    const std::int64_t Tc = c.context.dim(1);
    p.context_pad = (Tc + context_multiple - 1) / context_multiple * context_multiple - Tc;
    if (p.context_pad > 0) {
      p.ctx.context = be.pad(c.context, 1, 0, p.context_pad, 0.f);
      Tensor cm = c.context_mask;
      if (!cm.defined()) {
        cm = Tensor::empty({B, Tc}, DType::u8, x.device());
        be.fill(cm, 1.f);
      }
      p.ctx.context_mask = be.pad(cm, 1, 0, p.context_pad, 0.f);
    }
  }
  return p;
}

Autopadder::Autopadder(SinkhornLM& lm, bool pad_left) : lm_(&lm), pad_left_(pad_left) {}
Autopadder::Autopadder(SinkhornTransformer& tr, bool pad_left) : tr_(&tr), pad_left_(pad_left) {}

const LMConfig& Autopadder::config() const { return lm_ ? lm_->config() : tr_->config(); }

std::int64_t Autopadder::multiple() const {
  const LMConfig& c = config();
  return std::lcm(c.bucket_size, c.kv_bucket_size_v());
}

Tensor Autopadder::forward(const Tensor& x, AutopadStash& st, const Context& c) const {
  Backend& be = c.backend();
  st = AutopadStash{};
  Padded p = autopad_inputs(x, c, multiple(), config().context_bucket_size_v(), pad_left_);
  st.T = x.dim(1);
  st.pad = p.pad;
  st.context_pad = p.context_pad;
  st.inner = p.ctx;
  st.inner.dcontext = nullptr;  // set by backward (the stash may move between the two calls)
  Tensor out = lm_ ? lm_->forward(p.x, st.lm, st.inner) : tr_->forward(p.x, st.tr, st.inner);
  if (p.pad == 0) return out;
  return be.narrow(out, 1, pad_left_ ? p.pad : 0, st.T);  // [B, T, ...]
}

Tensor Autopadder::backward(Tensor dout, AutopadStash& st, const Context& c) {
  Backend& be = c.backend();
  const Device dev = dout.device();
  Tensor d = st.pad == 0 ? std::move(dout) : be.pad(dout, 1, pad_left_ ? st.pad : 0, pad_left_ ? 0 : st.pad, 0.f);
  dout = Tensor();
  Context inner = st.inner;
  // Context gradients: straight into the caller's tensor, or through a padded one cut back below.
  inner.dcontext = c.dcontext;
  if (st.context_pad > 0 && c.dcontext) {
    st.dcontext = Tensor::zeros(st.inner.context.shape(), DType::f32, dev);  // [B, Tc', D]
    inner.dcontext = &st.dcontext;
  }
  Tensor dx;
  if (lm_) lm_->backward(std::move(d), st.lm, inner);
  else dx = tr_->backward(d, st.tr, inner);
  if (st.context_pad > 0 && c.dcontext) {
    const std::int64_t Tc = st.dcontext.dim(1) - st.context_pad;
    be.axpy(*c.dcontext, be.narrow(st.dcontext, 1, 0, Tc));
  }
  if (dx.defined() && st.pad > 0) dx = be.narrow(dx, 1, pad_left_ ? st.pad : 0, st.T);
  st = AutopadStash{};
  return dx;
}

}  // namespace sk
