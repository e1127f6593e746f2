// config_validate.cpp — validate_lm_config: every constraint of the reference (model-spec §2) that
// can be checked without an input, plus the reference defects we reject rather than reproduce
// (§20). One-line errors: "<where>: <key> = <value>: <rule>".
// Checks that depend on the input length live in check_seq_len (sinkhorn_transformer.h).
#include <algorithm>
#include <sstream>

#include "model/core/error.h"
#include "model/lm/config.h"

namespace sk {

namespace {

template <class V>
[[noreturn]] void fail(const std::string& where, const char* key, const V& value, const std::string& rule) {
  throw_error(cat(where, ": ", key, " = ", value, ": ", rule));
}

std::string list_str(const std::vector<std::int64_t>& v) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

void prob(const std::string& where, const char* key, double p) {
  if (!(p >= 0.0 && p < 1.0)) fail(where, key, p, "must be a probability in [0, 1)");
}

}  // namespace

void validate_lm_config(const LMConfig& c, const std::string& where) {
  if (c.num_tokens < 1) fail(where, "num_tokens", c.num_tokens, "must be >= 1 (required)");
  if (c.dim < 1) fail(where, "dim", c.dim, "must be >= 1 (required)");
  if (c.max_seq_len < 1) fail(where, "max_seq_len", c.max_seq_len, "must be >= 1 (required)");
  if (c.depth < 1) fail(where, "depth", c.depth, "must be >= 1 (required)");
  if (c.heads < 1) fail(where, "heads", c.heads, "must be >= 1");
  if (c.dim_head) {
    if (*c.dim_head < 1) fail(where, "dim_head", *c.dim_head, "must be >= 1");
  } else if (c.dim % c.heads != 0) {
    fail(where, "dim", c.dim, cat("must be divisible by heads = ", c.heads, " when dim_head is not given"));
  }
  if (c.bucket_size < 1) fail(where, "bucket_size", c.bucket_size, "must be >= 1");
  if (c.kv_bucket_size && *c.kv_bucket_size < 1) fail(where, "kv_bucket_size", *c.kv_bucket_size, "must be >= 1");
  if (c.context_bucket_size && *c.context_bucket_size < 1)
    fail(where, "context_bucket_size", *c.context_bucket_size, "must be >= 1");
  if (c.max_seq_len < c.bucket_size)
    fail(where, "max_seq_len", c.max_seq_len,
         cat("must be >= bucket_size = ", c.bucket_size, " (the positional table has max_seq_len // bucket_size rows)"));
  if (c.emb_dim && *c.emb_dim < 1) fail(where, "emb_dim", *c.emb_dim, "must be >= 1");
  if (c.ff_chunks < 1) fail(where, "ff_chunks", c.ff_chunks, "must be >= 1");
  if (c.n_top_buckets < 1) fail(where, "n_top_buckets", c.n_top_buckets, "must be >= 1");
  if (c.n_sortcut < 0) fail(where, "n_sortcut", c.n_sortcut, "must be >= 0");
  if (c.context_n_sortcut < 0) fail(where, "context_n_sortcut", c.context_n_sortcut, "must be >= 0");
  if (!(c.temperature > 0.0)) fail(where, "temperature", c.temperature, "must be > 0");
  if (c.sinkhorn_iter < 1) fail(where, "sinkhorn_iter", c.sinkhorn_iter, "must be >= 1");
  if (c.n_local_attn_heads < 0 || c.n_local_attn_heads > c.heads)
    fail(where, "n_local_attn_heads", c.n_local_attn_heads, cat("must be in [0, heads = ", c.heads, "]"));
  prob(where, "ff_dropout", c.ff_dropout);
  prob(where, "attn_dropout", c.attn_dropout);
  prob(where, "attn_layer_dropout", c.attn_layer_dropout);
  prob(where, "layer_dropout", c.layer_dropout);
  prob(where, "emb_dropout", c.emb_dropout);

  const std::int64_t bs = c.bucket_size, kbs = c.kv_bucket_size_v();
  if (c.causal) {
    if (c.n_sortcut > 0) fail(where, "n_sortcut", c.n_sortcut, "sortcut can only be used for non-causal attention (causal = true)");
    if (kbs != bs)
      fail(where, "kv_bucket_size", kbs, cat("a causal model needs kv_bucket_size == bucket_size = ", bs));
  }
  // D4: more sortcut picks than key buckets (top-k runs out of columns -> NaN).
  if (c.n_sortcut > c.max_seq_len / kbs)
    fail(where, "n_sortcut", c.n_sortcut,
         cat("must be <= the number of key buckets max_seq_len // kv_bucket_size = ", c.max_seq_len / kbs,
             " (reference defect D4)"));
  if (c.use_simple_sort_net && !c.causal) {
    // Fixed length: sequences must be exactly max_seq_len, which must then be bucketable.
    if (c.max_seq_len % bs != 0 || c.max_seq_len % kbs != 0)
      fail(where, "max_seq_len", c.max_seq_len,
           cat("the non-causal simple sort net needs inputs of exactly max_seq_len, so it must be divisible by "
               "bucket_size = ", bs, " and kv_bucket_size = ", kbs));
    // D11: rows per key bucket regrouped as if per query bucket.
    if (kbs != bs)
      fail(where, "kv_bucket_size", kbs,
           cat("the non-causal simple sort net needs kv_bucket_size == bucket_size = ", bs, " (reference defect D11)"));
    if (c.n_sortcut > 0)
      fail(where, "n_sortcut", c.n_sortcut, "the non-causal simple sort net cannot be combined with n_sortcut > 0 (reference defect D11)");
  }
  if (!c.non_permutative && !c.causal && c.n_sortcut >= 2)
    fail(where, "n_sortcut", c.n_sortcut, "gumbel-sinkhorn (non_permutative = false) supports at most one sortcut bucket (reference defect D13)");
  if (c.receives_context) {
    if (c.heads * c.dim_head_v() != c.dim)
      fail(where, "dim_head", c.dim_head_v(),
           cat("with receives_context the context is split into heads of width dim / heads, so heads * dim_head must "
               "equal dim = ", c.dim));
    if (!c.non_permutative && c.context_n_sortcut >= 2)
      fail(where, "context_n_sortcut", c.context_n_sortcut,
           "gumbel-sinkhorn (non_permutative = false) supports at most one sortcut bucket (reference defect D13)");
  }
  if (!c.pkm_layers.empty()) {
    std::vector<std::int64_t> seen;
    for (auto n : c.pkm_layers) {
      if (n < 1 || n > c.depth)
        fail(where, "pkm_layers", list_str(c.pkm_layers), cat("layer numbers are 1-based and must be in [1, depth = ", c.depth, "]"));
      if (std::find(seen.begin(), seen.end(), n) != seen.end())
        fail(where, "pkm_layers", list_str(c.pkm_layers), cat("layer ", n, " is listed twice"));
      seen.push_back(n);
    }
    if (c.dim % 4 != 0) fail(where, "dim", c.dim, "product-key memory (pkm_layers) needs dim divisible by its 4 heads");
    if (c.pkm_num_keys < 32 || c.pkm_num_keys > 4096)
      fail(where, "pkm_num_keys", c.pkm_num_keys, "must be in [32, 4096] (32 slots are selected per half)");
  }
}

}  // namespace sk
