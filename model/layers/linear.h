// linear.h — Linear(in, out): y = x·Wᵀ + b (model-spec §1), weight [out, in], bias [out] optional.
// A building block of the layers (not a Residual itself): the caller owns its LinearStash.
#pragma once
#include <cstdint>
#include <string>

#include "model/core/backend.h"
#include "model/core/param.h"

namespace sk {

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

  // x [..., in] -> y [..., out]; records x in s.
  Tensor forward(const Tensor& x, LinearStash& s, Backend& be) const;
  // dy [..., out] -> dx [..., in]; dW += dyᵀ·x, db += Σ dy.
  Tensor backward(const Tensor& dy, const LinearStash& s, Backend& be);
  // Parameter gradients only (when nothing upstream needs dx).
  void backward_params(const Tensor& dy, const LinearStash& s, Backend& be);

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
