// flops.cpp — model FLOPs per token (see flops.h for what is counted).
#include "trainer/flops.h"

#include <algorithm>
#include <array>

namespace sk {

FlopCount model_flops_per_token(const LMConfig& c, std::int64_t seq_len) {
  const double D = static_cast<double>(c.dim), E = static_cast<double>(c.emb_dim_v()),
               V = static_cast<double>(c.num_tokens), T = static_cast<double>(seq_len);
  const double dh = static_cast<double>(c.dim_head_v()), HD = static_cast<double>(c.heads) * dh;
  const std::int64_t bs = c.bucket_size, kbs = c.causal ? c.bucket_size : c.kv_bucket_size_v();
  const std::int64_t nb = std::max<std::int64_t>(1, seq_len / bs), nkb = std::max<std::int64_t>(1, seq_len / kbs);
  const std::int64_t n_top = std::min(c.n_top_buckets, c.causal ? nb : nkb);
  const double Hl = static_cast<double>(std::min(c.n_local_attn_heads, c.heads));
  const double Hs = static_cast<double>(c.heads) - Hl;
  FlopCount f;
  // Per layer.
  FlopCount layer;
  layer.linear += 2 * D * HD + 2 * D * 2 * HD + 2 * HD * D;  // to_q, to_kv, to_out
  const double local_keys = static_cast<double>((c.causal ? 2 : 3) * bs);
  layer.attention += Hl * 4 * local_keys * dh;
  double sink_keys = 0, sort = 0;  // keys per query; sort-net FLOPs per head and sequence
  if (c.causal) {
    sink_keys = static_cast<double>((n_top + 1) * bs);
    const double cols = static_cast<double>(n_top + nb);
    sort = c.use_simple_sort_net ? 2.0 * static_cast<double>(nb) * 2 * dh * cols : 2.0 * static_cast<double>(nb) * cols * dh;
  } else {
    const std::int64_t picked = c.n_sortcut > 0 ? c.n_sortcut : n_top;
    sink_keys = static_cast<double>(picked * kbs + (nb == nkb ? kbs : 0));
    const double rows = c.n_sortcut > 0 ? 1.0 : static_cast<double>(c.use_simple_sort_net ? nkb : nb);
    sort = c.use_simple_sort_net ? 2.0 * rows * 2 * dh * static_cast<double>(c.max_seq_len / kbs)
                                 : 2.0 * rows * static_cast<double>(nkb) * dh;
  }
  layer.attention += Hs * 4 * sink_keys * dh;
  layer.sort_net += Hs * sort / T;
  const double ff = (c.ff_glu ? 2 * D * 8 * D : 2 * D * 4 * D) + 2 * 4 * D * D;
  // PKM (pkm.h: 4 heads, query width 256 per head, sub-keys 128 wide, top 32).
  const double pk_heads = 4, pk_q = 1024, pk_dk = 128, pk_top = 32, nk = static_cast<double>(c.pkm_num_keys);
  for (std::int64_t n = 1; n <= c.depth; ++n) {
    f.linear += layer.linear;
    f.attention += layer.attention;
    f.sort_net += layer.sort_net;
    const bool pkm = std::find(c.pkm_layers.begin(), c.pkm_layers.end(), n) != c.pkm_layers.end();
    if (pkm) {
      f.linear += 2 * D * pk_q;
      f.pkm += 2 * pk_heads * 2 * nk * pk_dk + 2 * pk_heads * pk_top * D;
    } else {
      f.linear += ff;
    }
  }
  if (E != D) f.linear += 2 * E * D + (c.return_embeddings ? 0 : 2 * D * E);  // project_in / project_out
  if (!c.return_embeddings) f.logits += 2 * E * V;
  return f;
}

std::optional<double> known_peak_flops(const std::string& model, bool bf16) {
  // Dense (no sparsity) peaks from the vendors' data sheets, FLOP/s: {name part, bf16 tensor, fp32}.
  struct Card {
    const char* part;
    double bf16, fp32;
  };
  static const std::array<Card, 9> cards{{
      {"H200", 989.4e12, 66.9e12},
      {"H100 PCIe", 756.5e12, 51.2e12},
      {"H100", 989.4e12, 66.9e12},  // SXM / HBM3
      {"GH200", 989.4e12, 66.9e12},
      {"A100", 312e12, 19.5e12},
      {"L40S", 362.1e12, 91.6e12},
      {"L4", 121e12, 30.3e12},
      {"A10", 125e12, 31.2e12},
      {"RTX 4090", 165.2e12, 82.6e12},
  }};
  for (const Card& c : cards)
    if (model.find(c.part) != std::string::npos) return bf16 ? c.bf16 : c.fp32;
  return std::nullopt;
}

}  // namespace sk
