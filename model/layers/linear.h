// linear.h — Linear(in, out): y = x·Wᵀ + b (model-spec §1), weight [out, in], bias [out] optional.
// A building block of the layers (not a Residual itself): the caller owns its LinearStash.
#pragma once
#include <cstdint>
#include <string>

#include "model/core/backend.h"
#include "model/core/param.h"
#include "model/layers/layer.h"

namespace sk {

// The GEMMs of every linear projection go through these two, so the precision mode lives in one
// place. fp32: exactly be.gemm / be.matmul. bf16: A and B are cast to bf16 and the bf16 GEMM runs
// with fp32 accumulation; C stays f32 (gemm accumulates into it with alpha / beta as usual).
void linear_gemm(Backend& be, Precision p, Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                 float alpha = 1.f, float beta = 0.f);
Tensor linear_matmul(Backend& be, Precision p, const Tensor& a, const Tensor& b, bool trans_a = false,
                     bool trans_b = false);

// "fp32" | "bf16" <-> Precision; parse_precision throws sk::Error naming the accepted values.
Precision parse_precision(const std::string& s);
const char* precision_name(Precision p);

struct LinearStash {
  Tensor x;  // input [..., in] (shares storage with the caller's tensor; no copy)
};

class Linear {
 public:
  Linear() = default;
  // Registers prefix+"weight" [out, in] and, with bias, prefix+"bias" [out]; nn.Linear init
  // (uniform in ±1/√in, model-spec §17). The weight goes to `group`; the bias to no_decay.
  Linear(ParamSet& ps, const std::string& prefix, std::int64_t in, std::int64_t out, bool bias,
         ParamGroup group = ParamGroup::default_group);

  // x [..., in] -> y [..., out]; records x in s. `p`: the GEMM precision (Context::gemm_precision).
  Tensor forward(const Tensor& x, LinearStash& s, Backend& be, Precision p) const;
  // dy [..., out] -> dx [..., in]; dW += dyᵀ·x, db += Σ dy.
  Tensor backward(const Tensor& dy, const LinearStash& s, Backend& be, Precision p);
  // Parameter gradients only (when nothing upstream needs dx).
  void backward_params(const Tensor& dy, const LinearStash& s, Backend& be, Precision p);

  std::int64_t in() const { return in_; }
  std::int64_t out() const { return out_; }
  Parameter* weight() const { return w_; }
  Parameter* bias() const { return b_; }

 private:
  Parameter* w_ = nullptr;
  Parameter* b_ = nullptr;
  std::int64_t in_ = 0, out_ = 0;
};

}  // namespace sk
