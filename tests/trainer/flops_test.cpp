// Model FLOPs per token (trainer/flops.h) against hand counts of two configs, and the peak table.
#include <gtest/gtest.h>

#include "trainer/flops.h"

namespace sk {
namespace {

// Causal, 2 local + 2 sinkhorn heads, a PKM layer. D = 64, H = 4, dh = 16, HD = 64, V = 256,
// T = 128, bs = 32 (nb = 4), n_top = 2, PKM with 128 keys.
//   attention projections per layer  8·D·HD                    = 32768
//   local heads (causal, 2·bs keys)  2 · 4·64·16               =  8192
//   causal sinkhorn ((2+1)·bs keys)  2 · 4·96·16               = 12288
//   causal sort net                  2 · 2·nb·(n_top+nb)·dh/T  = 2 · 2·4·6·16/128 = 12
//   layer 1 feed-forward             16·D²                     = 65536
//   layer 2 PKM: queries 2·D·1024 = 131072, sub-key scores 2·4·2·128·128 = 262144,
//                values 2·4·32·D = 16384                       = 409600
//   logits                           2·D·V                     = 32768
//   forward = 2·(32768 + 8192 + 12288 + 12) + 65536 + 409600 + 32768 = 614424; training = 3x = 1843272
TEST(Flops, HandCountCausalLocalSinkhornPkm) {
  LMConfig c;
  c.num_tokens = 256;
  c.dim = 64;
  c.depth = 2;
  c.max_seq_len = 128;
  c.heads = 4;
  c.n_local_attn_heads = 2;
  c.bucket_size = 32;
  c.causal = true;
  c.pkm_layers = {2};
  c.pkm_num_keys = 128;
  const FlopCount f = model_flops_per_token(c, 128);
  EXPECT_DOUBLE_EQ(f.sort_net, 24.0);
  EXPECT_DOUBLE_EQ(f.attention, 2 * (8192.0 + 12288.0));
  EXPECT_DOUBLE_EQ(f.pkm, 262144.0 + 16384.0);
  EXPECT_DOUBLE_EQ(f.logits, 32768.0);
  EXPECT_DOUBLE_EQ(f.forward(), 614424.0);
  EXPECT_DOUBLE_EQ(f.training(), 1843272.0);
}

// Non-causal, factorised embeddings (E = 32), GLU, sortcut 1, kv buckets of 16: D = 64, H = 4
// (all sinkhorn), dh = 16, V = 100, T = 128, nb = 4, nkb = 8 (no own bucket: nb != nkb).
//   projections 8·D·HD = 32768; sinkhorn keys n_sortcut·kbs = 16: 4 · 4·16·16 = 4096;
//   sort net (one summary row x 8 key buckets) 4 · 2·1·8·16/128 = 8; GLU feed-forward
//   2·D·8D + 2·4D·D = 98304; project_in + project_out 2·2·E·D = 8192; logits 2·E·V = 6400
//   forward = 149768; training = 449304
TEST(Flops, HandCountNonCausalSortcutGluFactorised) {
  LMConfig c;
  c.num_tokens = 100;
  c.dim = 64;
  c.emb_dim = 32;
  c.depth = 1;
  c.max_seq_len = 128;
  c.heads = 4;
  c.bucket_size = 32;
  c.kv_bucket_size = 16;
  c.n_sortcut = 1;
  c.ff_glu = true;
  const FlopCount f = model_flops_per_token(c, 128);
  EXPECT_DOUBLE_EQ(f.attention, 4096.0);
  EXPECT_DOUBLE_EQ(f.sort_net, 8.0);
  EXPECT_DOUBLE_EQ(f.linear, 32768.0 + 98304.0 + 8192.0);
  EXPECT_DOUBLE_EQ(f.forward(), 149768.0);
  EXPECT_DOUBLE_EQ(f.training(), 449304.0);
}

TEST(Flops, PeakTable) {
  EXPECT_DOUBLE_EQ(*known_peak_flops("NVIDIA H100 80GB HBM3", true), 989.4e12);
  EXPECT_DOUBLE_EQ(*known_peak_flops("NVIDIA H100 PCIe", true), 756.5e12);
  EXPECT_DOUBLE_EQ(*known_peak_flops("NVIDIA H200", false), 66.9e12);
  EXPECT_DOUBLE_EQ(*known_peak_flops("NVIDIA A100-SXM4-80GB", true), 312e12);
  EXPECT_DOUBLE_EQ(*known_peak_flops("NVIDIA A10", true), 125e12);
  EXPECT_FALSE(known_peak_flops("", true).has_value());
  EXPECT_FALSE(known_peak_flops("Some Other Card", true).has_value());
}

}  // namespace
}  // namespace sk
