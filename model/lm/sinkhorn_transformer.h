// sinkhorn_transformer.h — SinkhornTransformer on continuous inputs: the layer stack alone,
// [B, T, dim] in and out (model-spec §6), with the reference's forward-time checks.
//
// Parameter names are those of a stand-alone SinkhornTransformer's state_dict: prefix +
// "layers.layers.{L}…" (sequential) or prefix + "layers.blocks.{L}…" (reversible).
// Configured by an LMConfig (the fields that concern the stack; num_tokens, emb_dim, emb_dropout and
// return_embeddings are ignored). NOTE: the reference's SinkhornTransformer class has different
// defaults for non_permutative (False), n_top_buckets (1) and context_n_sortcut (2) than the LM;
// `transformer_defaults()` returns an LMConfig carrying those defaults.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "model/layers/stack.h"
#include "model/lm/config.h"

namespace sk {

// The stack's configuration as the LM passes it down (every LM argument forwarded).
StackConfig stack_config(const LMConfig& c);
// An LMConfig holding the inner SinkhornTransformer class's own defaults (§2 note, Q6).
LMConfig transformer_defaults();
// FNV-1a of a string: the Philox layer id of a model built under `prefix`.
std::uint64_t layer_id_of(const std::string& prefix);
// Forward-time checks of a sequence length (model-spec §2): T <= max_seq_len, T within the
// positional table (lm only), T % bucket_size == 0, T % kv_bucket_size == 0, fixed length for the
// non-causal simple sort net. `what` names the caller in the message.
void check_seq_len(const LMConfig& c, std::int64_t T, bool positional_table, const char* what);

struct TransformerStash {
  StackStash stack;
};

class SinkhornTransformer {
 public:
  SinkhornTransformer(const LMConfig& cfg, ParamSet& ps, const std::string& prefix = "");
  Tensor forward(const Tensor& x, TransformerStash& st, const Context& c) const;  // [B, T, D] -> [B, T, D]
  Tensor backward(const Tensor& dy, TransformerStash& st, const Context& c);     // -> dx [B, T, D]
  const LMConfig& config() const { return cfg_; }
  LayerStack& stack() { return *stack_; }

 private:
  LMConfig cfg_;
  std::unique_ptr<LayerStack> stack_;
};

}  // namespace sk
