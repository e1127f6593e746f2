#include "linear.h"

#include <cmath>

#include "model/core/error.h"

namespace sk {

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  throw Error(cat("precision \"", s, "\": must be \"fp32\" or \"bf16\""));
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

void linear_gemm(Backend& be, Precision p, Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                 float alpha, float beta) {
  if (p == Precision::fp32) {
    be.gemm(c, a, b, trans_a, trans_b, alpha, beta);
    return;
  }
  be.gemm(c, be.cast(a, DType::bf16), be.cast(b, DType::bf16), trans_a, trans_b, alpha, beta);
}

Tensor linear_matmul(Backend& be, Precision p, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  if (p == Precision::fp32) return be.matmul(a, b, trans_a, trans_b);
  return be.matmul(be.cast(a, DType::bf16), be.cast(b, DType::bf16), trans_a, trans_b);  // f32 result
}

Linear::Linear(ParamSet& ps, const std::string& prefix, std::int64_t in, std::int64_t out, bool bias,
               ParamGroup group)
    : in_(in), out_(out) {
  const float bound = 1.f / std::sqrt(static_cast<float>(in));
  w_ = ps.add(prefix + "weight", {out, in}, Init::Uniform(bound), group);
  if (bias) b_ = ps.add(prefix + "bias", {out}, Init::Uniform(bound), ParamGroup::no_decay);
}

Tensor Linear::forward(const Tensor& x, LinearStash& s, Backend& be, Precision p) const {
  SK_CHECK(x.dim(-1) == in_, "Linear(", in_, ", ", out_, "): input ", x.str(), " has the wrong last dimension");
  s.x = x;
  Tensor y = linear_matmul(be, p, x, w_->value, false, true);  // [..., out]
  if (b_) y = be.add(y, b_->value);
  return y;
}

void Linear::backward_params(const Tensor& dy, const LinearStash& s, Backend& be, Precision p) {
  Tensor dy2 = dy.reshape({-1, out_});   // [R, out]
  Tensor x2 = s.x.reshape({-1, in_});    // [R, in]
  linear_gemm(be, p, w_->grad, dy2, x2, /*trans_a=*/true, /*trans_b=*/false, 1.f, 1.f);  // dW [out, in] += dyᵀ·x
  if (b_) be.axpy(b_->grad, be.sum_to(dy2, {out_}));                          // db [out] += Σ dy
}

Tensor Linear::backward(const Tensor& dy, const LinearStash& s, Backend& be, Precision p) {
  backward_params(dy, s, be, p);
  return linear_matmul(be, p, dy, w_->value);  // dx [..., in] = dy·W
}

}  // namespace sk
