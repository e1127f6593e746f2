#include "wrappers.h"

namespace sk {

PreNorm::PreNorm(ParamSet& ps, const std::string& prefix, std::int64_t dim, Residual* fn)
    : norm_(ps, prefix + "norm.", dim), fn_(fn) {}

Tensor PreNorm::forward(const Tensor& x, Stash& s, const Context& c) const {
  auto& st = s.get<PreNormStash>();
  Tensor n = norm_.forward(x, st.norm, c.backend());  // [B, T, D]
  return fn_->forward(n, st.inner, c);
}

Tensor PreNorm::backward(const Tensor& dfx, Stash& s, const Context& c) {
  auto& st = s.get<PreNormStash>();
  Tensor dn = fn_->backward(dfx, st.inner, c);  // [B, T, D]
  Tensor dx = norm_.backward(dn, st.norm, c.backend());
  st = PreNormStash{};
  return dx;
}

ReZero::ReZero(ParamSet& ps, const std::string& prefix, Residual* fn) : fn_(fn) {
  g_ = ps.add(prefix + "g", {1}, Init::Zeros(), ParamGroup::no_decay);
}

Tensor ReZero::forward(const Tensor& x, Stash& s, const Context& c) const {
  auto& st = s.get<ReZeroStash>();
  st.fx = fn_->forward(x, st.inner, c);  // [B, T, D]
  return c.backend().mul(st.fx, g_->value);
}

Tensor ReZero::backward(const Tensor& dfx, Stash& s, const Context& c) {
  Backend& be = c.backend();
  auto& st = s.get<ReZeroStash>();
  be.axpy(g_->grad, be.sum_to(be.mul(st.fx, dfx), {1}));  // dg [1] += Σ fn(x)⊙dy
  Tensor dinner = be.mul(dfx, g_->value);                 // [B, T, D]
  Tensor dx = fn_->backward(dinner, st.inner, c);
  st = ReZeroStash{};
  return dx;
}

}  // namespace sk
