// embedding.h — token embedding and the summed axial positional embedding (model-spec §3, §4).
#pragma once
#include <cstdint>
#include <string>

#include "model/core/backend.h"
#include "model/core/param.h"

namespace sk {

// nn.Embedding(V, E): prefix+"weight" [V, E], init N(0, 1).
struct TokenEmbeddingStash {
  Tensor ids;  // i64 [B, T]
};
class TokenEmbedding {
 public:
  TokenEmbedding() = default;
  TokenEmbedding(ParamSet& ps, const std::string& prefix, std::int64_t num_tokens, std::int64_t dim);
  Tensor forward(const Tensor& ids, TokenEmbeddingStash& s, Backend& be) const;  // i64 [B, T] -> [B, T, E]
  void backward(const Tensor& dy, const TokenEmbeddingStash& s, Backend& be);     // dy [B, T, E]; dW +=
  std::int64_t num_tokens() const { return V_; }

 private:
  Parameter* w_ = nullptr;
  std::int64_t V_ = 0, E_ = 0;
};

// AxialPositionalEmbedding(E, axial_shape = (S0, S1)) without axial_dims: the two tables are summed.
//   prefix+"weights_0" [1, S0, 1, E], prefix+"weights_1" [1, 1, S1, E], both N(0, 1).
//   pos[p] = weights_0[p / S1] + weights_1[p % S1], for p < T <= S0·S1.
class AxialPositionalEmbedding {
 public:
  AxialPositionalEmbedding() = default;
  AxialPositionalEmbedding(ParamSet& ps, const std::string& prefix, std::int64_t s0, std::int64_t s1, std::int64_t dim);
  Tensor forward(std::int64_t T, Backend& be) const;       // -> pos [T, E]
  void backward(const Tensor& dpos, Backend& be);          // dpos [T, E]; dweights_0/1 +=
  std::int64_t max_len() const { return S0_ * S1_; }

 private:
  Parameter* w0_ = nullptr;
  Parameter* w1_ = nullptr;
  std::int64_t S0_ = 0, S1_ = 0, E_ = 0;
};

}  // namespace sk
