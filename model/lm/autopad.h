// autopad.h — Autopadder (model-spec §18): lets a model take any sequence length.
//   m = lcm(bucket_size, kv_bucket_size); pad = ceil(T/m)·m − T.
//   pad > 0: the input is padded with 0 (token id 0, or zero vectors for SinkhornTransformer) on the
//            left or right, and the mask (given, or all true) with false on the same side.
//   pad == 0: the call passes through unchanged (no mask is invented).
//   A context is padded on the right with zero vectors to a multiple of context_bucket_size; its
//   mask (given, or all true) is padded with false and passed only if padding happened.
//   The output is cut back to the original positions ([pad:] left, [:T] right).
// Backward pads the output gradient with zeros, runs the model's backward, and cuts the context
// gradient (and, for SinkhornTransformer, the input gradient) back.
#pragma once
#include <cstdint>

#include "model/lm/sinkhorn_lm.h"
#include "model/lm/sinkhorn_transformer.h"

namespace sk {

struct AutopadStash {
  LMStash lm;
  TransformerStash tr;
  Context inner;        // the context the model ran with (padded mask / context)
  Tensor dcontext;      // backward: padded context gradient [B, Tc', D] (context models)
  std::int64_t T = 0, pad = 0, context_pad = 0;
};

// The padded inputs of one call (exposed for tests and for the generator).
struct Padded {
  Tensor x;        // [B, T + pad] ids or [B, T + pad, D]
  Context ctx;     // with input_mask / context / context_mask replaced where padding happened
  std::int64_t pad = 0, context_pad = 0;
};
// Pads `x` (axis 1) and the context in `c` as described above.
Padded autopad_inputs(const Tensor& x, const Context& c, std::int64_t multiple, std::int64_t context_multiple,
                      bool pad_left);

class Autopadder {
 public:
  Autopadder(SinkhornLM& lm, bool pad_left);
  Autopadder(SinkhornTransformer& tr, bool pad_left);

  // LM: tokens i64 [B, T] -> output [B, T, out]; transformer: x [B, T, D] -> [B, T, D].
  Tensor forward(const Tensor& x, AutopadStash& st, const Context& c) const;
  // Returns dx for a SinkhornTransformer (undefined for an LM). Context grads into *c.dcontext.
  Tensor backward(Tensor dout, AutopadStash& st, const Context& c);  // by value: see SinkhornLM::backward

  bool pad_left() const { return pad_left_; }
  std::int64_t multiple() const;  // lcm(bucket_size, kv_bucket_size)
  const LMConfig& config() const;

 private:
  SinkhornLM* lm_ = nullptr;
  SinkhornTransformer* tr_ = nullptr;
  bool pad_left_ = false;
};

}  // namespace sk
