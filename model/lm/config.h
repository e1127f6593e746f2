// config.h — SinkhornTransformerLM arguments (model-spec §2), with the reference's defaults.
// Plain data: launch/ fills it from TOML ([model] table, same key names as the reference's
// keyword arguments); model/ validates it (validate_lm_config) and builds the LM from it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sk {

struct LMConfig {
  std::int64_t num_tokens = 0;   // required
  std::int64_t dim = 0;          // required
  std::int64_t max_seq_len = 0;  // required
  std::int64_t depth = 0;        // required
  std::int64_t heads = 8;
  std::optional<std::int64_t> dim_head;             // None -> dim / heads
  std::int64_t bucket_size = 64;
  std::optional<std::int64_t> kv_bucket_size;       // None -> bucket_size
  std::optional<std::int64_t> context_bucket_size;  // None -> bucket_size
  bool causal = false;
  bool non_permutative = true;
  std::int64_t sinkhorn_iter = 5;
  std::int64_t n_sortcut = 0;
  double temperature = 0.75;
  bool reversible = false;
  std::int64_t ff_chunks = 1;
  bool ff_glu = false;
  bool return_embeddings = false;
  double ff_dropout = 0.0;
  double attn_dropout = 0.0;
  double attn_layer_dropout = 0.0;
  double layer_dropout = 0.0;
  double emb_dropout = 0.0;
  bool weight_tie = false;
  std::optional<std::int64_t> emb_dim;              // None -> dim
  bool use_simple_sort_net = false;
  bool receives_context = false;
  std::int64_t context_n_sortcut = 0;
  std::int64_t n_local_attn_heads = 0;
  bool use_rezero = false;
  std::int64_t n_top_buckets = 2;
  std::vector<std::int64_t> pkm_layers;  // 1-based
  std::int64_t pkm_num_keys = 128;

  // Resolved values.
  std::int64_t dim_head_v() const { return dim_head ? *dim_head : (heads ? dim / heads : 0); }
  std::int64_t kv_bucket_size_v() const { return kv_bucket_size ? *kv_bucket_size : bucket_size; }
  std::int64_t context_bucket_size_v() const { return context_bucket_size ? *context_bucket_size : bucket_size; }
  std::int64_t emb_dim_v() const { return emb_dim ? *emb_dim : dim; }
};

// Throws sk::Error naming `where` (e.g. "run.toml [model]"), the key, its value and the rule
// for every constraint of the reference (model-spec §2) and every defect we reject (§20).
void validate_lm_config(const LMConfig& c, const std::string& where);

}  // namespace sk
