#include "embedding.h"

namespace sk {

TokenEmbedding::TokenEmbedding(ParamSet& ps, const std::string& prefix, std::int64_t num_tokens, std::int64_t dim)
    : V_(num_tokens), E_(dim) {
  w_ = ps.add(prefix + "weight", {num_tokens, dim}, Init::Normal(1.f));
}

Tensor TokenEmbedding::forward(const Tensor& ids, TokenEmbeddingStash& s, Backend& be) const {
  s.ids = ids;
  return be.embedding(w_->value, ids);  // [B, T, E]
}

void TokenEmbedding::backward(const Tensor& dy, const TokenEmbeddingStash& s, Backend& be) {
  be.embedding_backward(w_->grad, dy, s.ids);
}

AxialPositionalEmbedding::AxialPositionalEmbedding(ParamSet& ps, const std::string& prefix, std::int64_t s0,
                                                   std::int64_t s1, std::int64_t dim)
    : S0_(s0), S1_(s1), E_(dim) {
  w0_ = ps.add(prefix + "weights_0", {1, s0, 1, dim}, Init::Normal(1.f));
  w1_ = ps.add(prefix + "weights_1", {1, 1, s1, dim}, Init::Normal(1.f));
}

Tensor AxialPositionalEmbedding::forward(std::int64_t T, Backend& be) const {
  SK_CHECK(T <= S0_ * S1_, "axial positional embedding: sequence length ", T, " exceeds the table's ", S0_ * S1_,
           " positions ((max_seq_len // bucket_size) * bucket_size)");
  Tensor full = be.add(w0_->value.reshape({S0_, 1, E_}), w1_->value.reshape({1, S1_, E_}));  // [S0, S1, E]
  return full.reshape({S0_ * S1_, E_}).slice0(0, T);                                           // [T, E]
}

void AxialPositionalEmbedding::backward(const Tensor& dpos, Backend& be) {
  const std::int64_t T = dpos.dim(0);
  Tensor full = be.pad(dpos, 0, 0, S0_ * S1_ - T, 0.f).reshape({S0_, S1_, E_});  // [S0, S1, E], unused rows 0
  Tensor d0 = be.reduce(full, 1, ReduceOp::sum);  // [S0, E]
  Tensor d1 = be.reduce(full, 0, ReduceOp::sum);  // [S1, E]
  be.axpy(w0_->grad, d0);
  be.axpy(w1_->grad, d1);
}

}  // namespace sk
