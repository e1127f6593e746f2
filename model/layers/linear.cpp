#include "linear.h"

#include <cmath>

namespace sk {

Linear::Linear(ParamSet& ps, const std::string& prefix, std::int64_t in, std::int64_t out, bool bias,
               ParamGroup group)
    : in_(in), out_(out) {
  const float bound = 1.f / std::sqrt(static_cast<float>(in));
  w_ = ps.add(prefix + "weight", {out, in}, Init::Uniform(bound), group);
  if (bias) b_ = ps.add(prefix + "bias", {out}, Init::Uniform(bound), ParamGroup::no_decay);
}

Tensor Linear::forward(const Tensor& x, LinearStash& s, Backend& be) const {
  SK_CHECK(x.dim(-1) == in_, "Linear(", in_, ", ", out_, "): input ", x.str(), " has the wrong last dimension");
  s.x = x;
  Tensor y = be.matmul(x, w_->value, false, true);  // [..., out]
  if (b_) y = be.add(y, b_->value);
  return y;
}

void Linear::backward_params(const Tensor& dy, const LinearStash& s, Backend& be) {
  Tensor dy2 = dy.reshape({-1, out_});   // [R, out]
  Tensor x2 = s.x.reshape({-1, in_});    // [R, in]
  be.gemm(w_->grad, dy2, x2, /*trans_a=*/true, /*trans_b=*/false, 1.f, 1.f);  // dW [out, in] += dyᵀ·x
  if (b_) be.axpy(b_->grad, be.sum_to(dy2, {out_}));                          // db [out] += Σ dy
}

Tensor Linear::backward(const Tensor& dy, const LinearStash& s, Backend& be) {
  backward_params(dy, s, be);
  return be.matmul(dy, w_->value);  // dx [..., in] = dy·W
}

}  // namespace sk
