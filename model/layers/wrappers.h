// wrappers.h — the per-block wrappers around a block's f / g (model-spec §6.2).
//   PreNorm(fn)(x) = fn(LayerNorm_D(x))   params W+"norm.weight", W+"norm.bias" [D]
//   ReZero(fn)(x)  = fn(x) · g            param  W+"g" [1], init 0
// The wrapped fn is NOT owned: with weight tying (§6.6) several wrappers share one fn, while every
// wrapper keeps its own norm / gate. Masks and context reach fn through the Context unchanged.
#pragma once
#include <string>

#include "model/layers/layer.h"
#include "model/layers/layernorm.h"

namespace sk {

struct PreNormStash {
  LayerNormStash norm;
  Stash inner;  // fn's stash
};

class PreNorm : public Residual {
 public:
  PreNorm(ParamSet& ps, const std::string& prefix, std::int64_t dim, Residual* fn);
  Tensor forward(const Tensor& x, Stash& s, const Context& c) const override;  // [B, T, D] -> fn's output
  Tensor backward(const Tensor& dfx, Stash& s, const Context& c) override;     // -> dx [B, T, D]

 private:
  LayerNorm norm_;
  Residual* fn_;
};

struct ReZeroStash {
  Tensor fx;    // fn(x) [B, T, D] (for dg)
  Stash inner;  // fn's stash
};

class ReZero : public Residual {
 public:
  ReZero(ParamSet& ps, const std::string& prefix, Residual* fn);
  Tensor forward(const Tensor& x, Stash& s, const Context& c) const override;  // fn(x)·g
  Tensor backward(const Tensor& dfx, Stash& s, const Context& c) override;     // dg += Σ fn(x)⊙dfx

 private:
  Parameter* g_ = nullptr;
  Residual* fn_;
};

}  // namespace sk
