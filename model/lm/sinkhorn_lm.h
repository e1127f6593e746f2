// sinkhorn_lm.h — SinkhornTransformerLM (model-spec §3, §5): token embedding + axial positions,
// embedding dropout, the layer stack (wrapped in Linear(E, D) / Linear(D, E) when E != D), final
// LayerNorm, and the logits head (absent with return_embeddings).
//
// Parameter names (§6.7), all under an optional `prefix` (e.g. "encoder."): "to_token_emb.weight",
// "axial_pos_emb.weights_0/1", the stack under "sinkhorn_transformer." (or
// "sinkhorn_transformer.fn." when E != D, with "sinkhorn_transformer.project_in/out.*"),
// "norm.weight/bias", "to_logits.weight/bias".
//
// Defect D3 corrected: with return_embeddings and emb_dim != dim the reference omits project_out
// and then fails in LayerNorm(emb_dim). Here the final norm is LayerNorm(dim) ("norm.weight/bias"
// are [dim]) and the embeddings are dim wide — the width a decoder's context needs.
//
// Inputs come with the Context: input_mask (u8 [B, T]), and for receives_context models context
// ([B, Tc, dim]) and context_mask; backward accumulates parameter gradients and, for context
// models, adds the context's gradient into *ctx.dcontext.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "model/layers/embedding.h"
#include "model/layers/layernorm.h"
#include "model/layers/linear.h"
#include "model/layers/stack.h"
#include "model/lm/config.h"

namespace sk {

struct LMStash {
  TokenEmbeddingStash tok;
  LinearStash project_in, project_out;
  StackStash stack;
  LayerNormStash norm;
  LinearStash to_logits;
  std::int64_t T = 0;
};

class SinkhornLM {
 public:
  static constexpr std::uint64_t kSiteEmbDropout = 1;

  // Validates cfg (validate_lm_config, where = "SinkhornLM " + prefix) and registers every
  // parameter under its reference name. With a layer range (a pipeline stage) only the layers
  // [first, last) are built, plus the embeddings (token, axial positions, embedding dropout,
  // project_in) when first == 0 and the head (project_out, final norm, logits) when last == depth;
  // forward / backward then need the whole model, the stage pieces below work on any part.
  SinkhornLM(const LMConfig& cfg, ParamSet& ps, const std::string& prefix = "", LayerRange range = {});
  ~SinkhornLM();
  SinkhornLM(const SinkhornLM&) = delete;
  SinkhornLM& operator=(const SinkhornLM&) = delete;

  // tokens i64 [B, T] -> logits [B, T, V], or embeddings [B, T, out_dim()] with return_embeddings.
  Tensor forward(const Tensor& tokens, LMStash& st, const Context& c) const;
  // dout: gradient of the output. Accumulates parameter grads (+=); context grads into *c.dcontext.
  // Taken by value: a caller that moves its gradient in lets backward free it (and each stash
  // entry) as soon as it has been used, which lowers the peak of the step.
  void backward(Tensor dout, LMStash& st, const Context& c);

  // ---- stage pieces: forward = head_forward(stack.leave(stack.forward_streams(stack.enter(embed_forward(tokens))))) ----
  bool has_embed() const { return has_embed_; }
  bool has_head() const { return has_head_; }
  bool whole() const { return has_embed_ && has_head_; }
  // tokens i64 [B, T] -> the stack's input [B, T, D] (checks as forward; the context is not read).
  Tensor embed_forward(const Tensor& tokens, LMStash& st, const Context& c) const;
  // dx: gradient of embed_forward's output. Uses st.tok / st.project_in / st.T (from embed_forward).
  void embed_backward(Tensor dx, LMStash& st, const Context& c);
  // The stack's output [B, T, D] -> logits [B, T, V] (or embeddings).
  Tensor head_forward(const Tensor& h, LMStash& st, const Context& c) const;
  // Gradient of head_forward's output -> gradient of its input [B, T, D].
  Tensor head_backward(Tensor dout, LMStash& st, const Context& c);

  const LMConfig& config() const { return cfg_; }
  const std::string& prefix() const { return prefix_; }
  // Width of the output's last axis: V, or the embedding width (E, or D when D3 applies).
  std::int64_t out_dim() const;
  LayerStack& stack() { return *stack_; }

 private:
  LMConfig cfg_;
  std::string prefix_;
  std::uint64_t layer_id_ = 0;
  bool project_ = false;      // E != D
  bool project_out_ = false;  // E != D and not return_embeddings
  bool has_embed_ = true, has_head_ = true;
  TokenEmbedding tok_;
  AxialPositionalEmbedding pos_;
  std::unique_ptr<LayerStack> stack_;
  Linear project_in_, project_out_lin_;
  LayerNorm norm_;
  Linear to_logits_;
};

}  // namespace sk
