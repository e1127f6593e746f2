// layernorm.h — LayerNorm(n) over the last axis: biased variance, eps 1e-5, weight and bias [n]
// (model-spec §1). Registers prefix+"weight" (init 1) and prefix+"bias" (init 0).
#pragma once
#include <cstdint>
#include <string>

#include "model/core/backend.h"
#include "model/core/param.h"

namespace sk {

struct LayerNormStash {
  Tensor x;          // input [..., n] (shared with the caller)
  LayerNormOut out;  // mean, rstd [rows]; out.y is dropped after forward
};

class LayerNorm {
 public:
  LayerNorm() = default;
  LayerNorm(ParamSet& ps, const std::string& prefix, std::int64_t n);

  Tensor forward(const Tensor& x, LayerNormStash& s, Backend& be) const;  // [..., n] -> [..., n]
  Tensor backward(const Tensor& dy, const LayerNormStash& s, Backend& be);  // -> dx; dw, db +=

  std::int64_t size() const { return n_; }

 private:
  Parameter* w_ = nullptr;
  Parameter* b_ = nullptr;
  std::int64_t n_ = 0;
};

}  // namespace sk
