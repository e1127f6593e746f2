#include "sinkhorn_lm.h"

#include <utility>

#include "model/lm/sinkhorn_transformer.h"

namespace sk {

SinkhornLM::~SinkhornLM() = default;

SinkhornLM::SinkhornLM(const LMConfig& cfg, ParamSet& ps, const std::string& prefix, LayerRange range)
    : cfg_(cfg), prefix_(prefix), layer_id_(layer_id_of(prefix)) {
  validate_lm_config(cfg, "SinkhornLM " + (prefix.empty() ? std::string("(no prefix)") : prefix));
  const std::int64_t D = cfg.dim, E = cfg.emb_dim_v(), V = cfg.num_tokens, bs = cfg.bucket_size;
  if (range.last < 0) range.last = cfg.depth;
  has_embed_ = range.first == 0;
  has_head_ = range.last == cfg.depth;
  project_ = E != D;
  project_out_ = project_ && !cfg.return_embeddings;
  if (has_embed_) {
    tok_ = TokenEmbedding(ps, prefix + "to_token_emb.", V, E);
    pos_ = AxialPositionalEmbedding(ps, prefix + "axial_pos_emb.", cfg.max_seq_len / bs, bs, E);
  }
  const std::string P = prefix + (project_ ? "sinkhorn_transformer.fn." : "sinkhorn_transformer.");
  stack_ = std::make_unique<LayerStack>(stack_config(cfg), ps, P, layer_id_, range);
  if (project_) {
    if (has_embed_) project_in_ = Linear(ps, prefix + "sinkhorn_transformer.project_in.", E, D, true);
    if (project_out_ && has_head_) project_out_lin_ = Linear(ps, prefix + "sinkhorn_transformer.project_out.", D, E, true);
  }
  if (has_head_) {
    const std::int64_t W = project_ && !project_out_ ? D : E;  // D3 corrected
    norm_ = LayerNorm(ps, prefix + "norm.", W);
    if (!cfg.return_embeddings) to_logits_ = Linear(ps, prefix + "to_logits.", E, V, true);
  }
}

std::int64_t SinkhornLM::out_dim() const {
  if (!cfg_.return_embeddings) return cfg_.num_tokens;
  return project_ ? cfg_.dim : cfg_.emb_dim_v();
}

Tensor SinkhornLM::forward(const Tensor& tokens, LMStash& st, const Context& c) const {
  SK_CHECK(whole(), "SinkhornLM::forward: this LM holds only a pipeline stage's part (use the stage pieces)");
  SK_CHECK(!c.context.defined() || cfg_.receives_context,
           "SinkhornLM: a context was passed but the model was not built with receives_context");
  SK_CHECK(c.context.defined() || !cfg_.receives_context,
           "SinkhornLM: receives_context is set but no context was passed");
  if (c.context.defined())
    SK_CHECK(c.context.ndim() == 3 && c.context.dim(0) == tokens.dim(0) && c.context.dim(2) == cfg_.dim,
             "SinkhornLM: context must be [", tokens.dim(0), ", Tc, ", cfg_.dim, "], got ", c.context.str());
  Tensor h = embed_forward(tokens, st, c);           // [B, T, D]
  h = stack_->forward(h, st.stack, c);               // [B, T, D]
  return head_forward(h, st, c);                     // [B, T, V]
}

Tensor SinkhornLM::embed_forward(const Tensor& tokens, LMStash& st, const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(has_embed_, "SinkhornLM::embed_forward: this stage does not hold the embeddings");
  SK_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i64, "SinkhornLM: expected token ids i64 [B, T], got ",
           tokens.str());
  const std::int64_t B = tokens.dim(0), T = tokens.dim(1);
  check_seq_len(cfg_, T, true, "SinkhornLM");
  SK_CHECK(!c.input_mask.defined() || (c.input_mask.dtype() == DType::u8 && c.input_mask.shape() == Shape{B, T}),
           "SinkhornLM: input_mask must be u8 [", B, ", ", T, "], got ", c.input_mask.str());
  st = LMStash{};
  st.T = T;
  Context base = c;
  base.block = 0;
  Tensor h = tok_.forward(tokens, st.tok, be);  // [B, T, E]
  h = be.add(h, pos_.forward(T, be));           // + pos [T, E]
  const float pe = c.training ? static_cast<float>(cfg_.emb_dropout) : 0.f;
  if (pe > 0.f) h = be.dropout(h, pe, base.key(layer_id_, kSiteEmbDropout, B));
  if (project_) h = project_in_.forward(h, st.project_in, be, c.gemm_precision);  // [B, T, D]
  return h;
}

Tensor SinkhornLM::head_forward(const Tensor& x, LMStash& st, const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(has_head_, "SinkhornLM::head_forward: this stage does not hold the head");
  st.T = x.dim(1);
  Tensor h = x;
  if (project_out_) h = project_out_lin_.forward(h, st.project_out, be, c.gemm_precision);  // [B, T, E]
  h = norm_.forward(h, st.norm, be);                                  // [B, T, E] (D with D3)
  if (cfg_.return_embeddings) return h;
  return to_logits_.forward(h, st.to_logits, be, c.gemm_precision);   // [B, T, V]
}

void SinkhornLM::backward(Tensor dout, LMStash& st, const Context& c) {
  SK_ASSERT(st.T > 0, "SinkhornLM::backward without forward");
  Tensor d = head_backward(std::move(dout), st, c);
  d = stack_->backward(std::move(d), st.stack, c);
  embed_backward(std::move(d), st, c);
  st = LMStash{};
}

Tensor SinkhornLM::head_backward(Tensor dout, LMStash& st, const Context& c) {
  Backend& be = c.backend();
  SK_CHECK(dout.ndim() == 3 && dout.dim(1) == st.T && dout.dim(2) == out_dim(), "SinkhornLM::backward: dout must be [B, ",
           st.T, ", ", out_dim(), "], got ", dout.str());
  Tensor d = std::move(dout);
  // Each stash entry is dropped as soon as its backward has run.
  if (!cfg_.return_embeddings) d = to_logits_.backward(d, st.to_logits, be, c.gemm_precision);  // [B, T, E]
  st.to_logits = LinearStash{};
  d = norm_.backward(d, st.norm, be);
  st.norm = LayerNormStash{};
  if (project_out_) d = project_out_lin_.backward(d, st.project_out, be, c.gemm_precision);       // [B, T, D]
  st.project_out = LinearStash{};
  return d;
}

void SinkhornLM::embed_backward(Tensor dx, LMStash& st, const Context& c) {
  Backend& be = c.backend();
  Context base = c;
  base.block = 0;
  Tensor d = std::move(dx);
  if (project_) d = project_in_.backward(d, st.project_in, be, c.gemm_precision);                 // [B, T, E]
  st.project_in = LinearStash{};
  const float pe = c.training ? static_cast<float>(cfg_.emb_dropout) : 0.f;
  if (pe > 0.f) d = be.dropout_backward(d, pe, base.key(layer_id_, kSiteEmbDropout, d.dim(0)));
  tok_.backward(d, st.tok, be);
  pos_.backward(be.sum_to(d, {st.T, d.dim(2)}), be);  // Σ over the batch -> [T, E]
}

}  // namespace sk
