#include "layernorm.h"

namespace sk {

LayerNorm::LayerNorm(ParamSet& ps, const std::string& prefix, std::int64_t n) : n_(n) {
  w_ = ps.add(prefix + "weight", {n}, Init::Ones(), ParamGroup::no_decay);
  b_ = ps.add(prefix + "bias", {n}, Init::Zeros(), ParamGroup::no_decay);
}

Tensor LayerNorm::forward(const Tensor& x, LayerNormStash& s, Backend& be) const {
  SK_CHECK(x.dim(-1) == n_, "LayerNorm(", n_, "): input ", x.str(), " has the wrong last dimension");
  s.x = x;
  s.out = be.layernorm(x, w_->value, b_->value, 1e-5f);
  Tensor y = s.out.y;
  s.out.y = Tensor();
  return y;
}

Tensor LayerNorm::backward(const Tensor& dy, const LayerNormStash& s, Backend& be) {
  return be.layernorm_backward(dy, s.x, w_->value, s.out, w_->grad, b_->grad);
}

}  // namespace sk
