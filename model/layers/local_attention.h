// local_attention.h — the windowed local-attention heads (model-spec §9; local-attention 1.4.3 as
// configured by the Sinkhorn layer): window w = bucket size, one window of look-back, one of
// look-ahead when non-causal, outside windows filled with −1 vectors (their slots always masked),
// causal mask, input mask; fully masked rows become uniform over every slot.
#pragma once
#include <cstdint>

#include "model/layers/attention_ops.h"

namespace sk {

struct LocalAttnStash {
  Tensor q, k, v;           // [B, Hl, T, dh]
  attn::AttendStash attend;
};

struct QKVGrads {
  Tensor dq, dk, dv;
};

// q, k, v [B, Hl, T, dh]; mask f32 [B, T] (1 = real) or undefined -> [B, Hl, T, dh].
// `masks` caches the structural window mask across calls (owned by the calling layer).
Tensor local_attention_forward(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                               std::int64_t window, bool causal, float p_drop, RngKey key, LocalAttnStash& s,
                               attn::ConstMaskCache& masks);
// dout [B, Hl, T, dh] -> dq, dk, dv [B, Hl, T, dh].
QKVGrads local_attention_backward(Backend& be, const Tensor& dout, std::int64_t window, bool causal, float p_drop,
                                  RngKey key, const LocalAttnStash& s);

}  // namespace sk
