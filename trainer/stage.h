// stage.h — one pipeline stage's share of the language model and of each micro-batch's work:
// the compute half of pipeline parallelism (the transfers are trainer/pipeline.h's).
//
// A stage holds a contiguous range of layers of the SinkhornLM (model/lm: LayerRange); the first
// stage also the embeddings, the last the head and the loss. A 1-stage "pipeline" is the whole
// model, so one process and every pipeline run the same code.
//
// Every stage builds each micro-batch's inputs itself (prepare_micro_batch: tokens, random
// truncation, targets, autopadding, masks and the Philox context), so only activations and their
// gradients travel between stages. A boundary message is one flat f32 tensor:
//   forward  (stage s -> s+1)   the residual stream: [1 or 2 streams, b, Tp, D]
//   backward (stage s+1 -> s)   its gradient [streams, b, Tp, D]; for a reversible stack followed
//                               by the inputs the next stage rebuilt ([4, b, Tp, D] in all), which
//                               become this stage's outputs to rebuild from — exactly the values
//                               a single process would rebuild from.
// Memory per micro-batch in flight: a sequential stage keeps its blocks' stashes (as backprop
// does); a reversible stage keeps nothing but the message buffers: the first stage recomputes the
// cheap embedding in backward, middle stages get their outputs back with the gradient, and the
// last stage runs the head, the loss and the head's backward as soon as its forward is done, and
// keeps only its output streams and their gradient until the micro-batch's backward.
//
// Loss: the mean next-token cross-entropy of the micro-batch (targets equal to the ignore index
// not counted); its gradient is scaled by `loss_scale` (1 / micro-batches per step), as the
// single-process trainer always did.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/layers/layer.h"
#include "model/layers/stack.h"
#include "model/lm/config.h"
#include "model/lm/sinkhorn_lm.h"

namespace sk {

// The inputs of one micro-batch as every stage builds them.
struct MicroBatch {
  Tensor inputs;   // i64 [b, Tp]: padded input tokens (what the first stage embeds)
  Tensor targets;  // i64 [b * T]: next tokens, ignore_index where not a target
  Context ctx;     // mode, Philox (seed, step, micro = global id of row 0), padded input mask
  std::int64_t rows = 0, T = 0, Tp = 0, pad = 0;  // b, unpadded and padded lengths, left padding
  std::int64_t ignore_index = -100;
};

struct MicroBatchOptions {
  bool truncate = false;          // random truncation (causal models; per-row Philox lengths)
  std::int64_t pad_value = 0;     // token of the left padding
  std::int64_t ignore_index = -100;
  std::int64_t multiple = 1;      // autopadding multiple: lcm(bucket_size, kv_bucket_size)
};

// x: i64 [b, T+1] host rows of the micro-batch; c: the step's context with `micro` set.
MicroBatch prepare_micro_batch(const std::vector<std::int64_t>& x, std::int64_t rows, std::int64_t cols,
                               const MicroBatchOptions& o, const Context& c);

// What a stage keeps of one micro-batch between its forward and its backward.
struct MicroState {
  LMStash lm;          // embeddings (sequential first stage) / head (transient)
  StackStash stack;    // this stage's blocks
  Streams dout;        // last stage: gradient of its output streams (head backward already done)
  double loss = 0;     // last stage: the micro-batch's mean loss (host copy, read by loss_value)
  Tensor loss_t;       // ... on the device, f32 [1]: read once per step for all micro-batches
  std::int64_t count = 0;  // last stage: counted targets
};

// Gradient readiness events of a stage's backward (see Stage::param_events): a block index
// (>= 0), the head (its backward runs in the last stage's forward) or the embeddings.
constexpr std::int64_t kHeadGrads = -1, kEmbedGrads = -2;
using GradsReady = std::function<void(std::int64_t event)>;

class Stage {
 public:
  // Builds this stage's parameters into `ps` (not finalized here).
  Stage(const LMConfig& cfg, ParamSet& ps, LayerRange layers);
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  bool first() const { return lm_->has_embed(); }
  bool last() const { return lm_->has_head(); }
  int streams() const { return lm_->stack().reversible() ? 2 : 1; }
  // Element counts of the boundary messages for micro-batch `mb`.
  std::int64_t act_numel(const MicroBatch& mb) const;   // what this stage receives (0 on the first)
  std::int64_t grad_numel(const MicroBatch& mb) const;  // what it receives in backward (0 on the last)

  // Forward of `mb` on this stage from the received activations `in` (undefined on the first
  // stage); returns what to send on (undefined on the last stage). On the last stage, computes the
  // loss and — when `backward_follows` — the head's backward with the gradient scaled by
  // loss_scale, keeping only the output streams' gradient in `st`.
  // `ready` (optional): called with kHeadGrads once the head's backward is done.
  Tensor forward(const MicroBatch& mb, const Tensor& in, MicroState& st, bool backward_follows, float loss_scale,
                 const GradsReady* ready = nullptr);
  // Backward from the received message (undefined on the last stage); returns the message for the
  // previous stage (undefined on the first). Parameter gradients accumulate (+=). `ready`
  // (optional): called with every block index as its backward finishes and with kEmbedGrads last.
  Tensor backward(const MicroBatch& mb, const Tensor& in, MicroState& st, const GradsReady* ready = nullptr);
  // The event after which each parameter of `ps` (the ParamSet this stage was built into, by
  // index) receives no more gradient in a micro-batch's backward.
  std::vector<std::int64_t> param_events(const ParamSet& ps) const;
  // Eval forward on the last stage: logits [b, T, V] of the unpadded positions.
  Tensor logits(const MicroBatch& mb, const Tensor& in);

  SinkhornLM& lm() { return *lm_; }

 private:
  Streams unpack(const Tensor& msg, const MicroBatch& mb, int first_stream, int count) const;
  Tensor pack(const std::vector<Tensor>& ts) const;
  Streams stage_input(const MicroBatch& mb, const Tensor& in, LMStash& emb) const;
  Tensor head_logits(const MicroBatch& mb, const Tensor& out, LMStash& st) const;

  std::unique_ptr<SinkhornLM> lm_;
  std::int64_t D_ = 0;
};

}  // namespace sk
