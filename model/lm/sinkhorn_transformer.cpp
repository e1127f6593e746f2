#include "sinkhorn_transformer.h"

namespace sk {

StackConfig stack_config(const LMConfig& c) {
  StackConfig s;
  s.dim = c.dim;
  s.depth = c.depth;
  s.heads = c.heads;
  s.dim_head = c.dim_head_v();
  s.bucket_size = c.bucket_size;
  s.kv_bucket_size = c.kv_bucket_size_v();
  s.context_bucket_size = c.context_bucket_size_v();
  s.max_seq_len = c.max_seq_len;
  s.causal = c.causal;
  s.non_permutative = c.non_permutative;
  s.sinkhorn_iter = c.sinkhorn_iter;
  s.n_sortcut = c.n_sortcut;
  s.temperature = static_cast<float>(c.temperature);
  s.reversible = c.reversible;
  s.ff_chunks = c.ff_chunks;
  s.ff_glu = c.ff_glu;
  s.ff_dropout = static_cast<float>(c.ff_dropout);
  s.attn_dropout = static_cast<float>(c.attn_dropout);
  s.attn_layer_dropout = static_cast<float>(c.attn_layer_dropout);
  s.layer_dropout = static_cast<float>(c.layer_dropout);
  s.weight_tie = c.weight_tie;
  s.use_simple_sort_net = c.use_simple_sort_net;
  s.receives_context = c.receives_context;
  s.context_n_sortcut = c.context_n_sortcut;
  s.n_local_attn_heads = c.n_local_attn_heads;
  s.use_rezero = c.use_rezero;
  s.n_top_buckets = c.n_top_buckets;
  s.pkm_layers = c.pkm_layers;
  s.pkm_num_keys = c.pkm_num_keys;
  return s;
}

LMConfig transformer_defaults() {
  LMConfig c;
  c.non_permutative = false;
  c.n_top_buckets = 1;
  c.context_n_sortcut = 2;
  return c;
}

std::uint64_t layer_id_of(const std::string& prefix) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : prefix) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

void check_seq_len(const LMConfig& c, std::int64_t T, bool positional_table, const char* what) {
  const std::int64_t bs = c.bucket_size, kbs = c.kv_bucket_size_v();
  SK_CHECK(T >= 1, what, ": empty sequence");
  SK_CHECK(T <= c.max_seq_len, what, ": sequence length ", T, " is greater than max_seq_len ", c.max_seq_len);
  if (positional_table)
    SK_CHECK(T <= (c.max_seq_len / bs) * bs, what, ": sequence length ", T,
             " exceeds the positional table's (max_seq_len // bucket_size) * bucket_size = ", (c.max_seq_len / bs) * bs,
             " positions");
  SK_CHECK(T % bs == 0, what, ": sequence length ", T, " must be divisible by bucket_size ", bs,
           " (use the Autopadder for other lengths)");
  SK_CHECK(T % kbs == 0, what, ": sequence length ", T, " must be divisible by kv_bucket_size ", kbs,
           " (use the Autopadder for other lengths)");
  SK_CHECK(!(c.use_simple_sort_net && !c.causal) || T == c.max_seq_len, what,
           ": the non-causal simple sort net needs sequences of exactly max_seq_len = ", c.max_seq_len, ", got ", T);
}

SinkhornTransformer::SinkhornTransformer(const LMConfig& cfg, ParamSet& ps, const std::string& prefix) : cfg_(cfg) {
  stack_ = std::make_unique<LayerStack>(stack_config(cfg), ps, prefix, layer_id_of(prefix));
}

Tensor SinkhornTransformer::forward(const Tensor& x, TransformerStash& st, const Context& c) const {
  SK_CHECK(x.ndim() == 3 && x.dim(2) == cfg_.dim, "SinkhornTransformer: expected input [B, T, ", cfg_.dim, "], got ",
           x.str());
  check_seq_len(cfg_, x.dim(1), false, "SinkhornTransformer");
  SK_CHECK(!c.context.defined() || cfg_.receives_context,
           "SinkhornTransformer: a context was passed but the model was not built with receives_context");
  SK_CHECK(c.context.defined() || !cfg_.receives_context,
           "SinkhornTransformer: receives_context is set but no context was passed");
  return stack_->forward(x, st.stack, c);
}

Tensor SinkhornTransformer::backward(const Tensor& dy, TransformerStash& st, const Context& c) {
  return stack_->backward(dy, st.stack, c);
}

}  // namespace sk
