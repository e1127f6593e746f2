// stage.cpp — a pipeline stage's compute (see stage.h).
#include "trainer/stage.h"

#include <utility>

#include "model/lm/autopad.h"
#include "model/lm/autoregressive.h"

namespace sk {

MicroBatch prepare_micro_batch(const std::vector<std::int64_t>& x, std::int64_t rows, std::int64_t cols,
                               const MicroBatchOptions& o, const Context& c) {
  Backend& be = c.backend();
  const Device dev = be.device();
  SK_CHECK(rows >= 1 && cols >= 2 && static_cast<std::int64_t>(x.size()) == rows * cols,
           "prepare_micro_batch: expected [rows >= 1, T + 1 >= 2] tokens, got ", x.size(), " for ", rows, " x ", cols);
  MicroBatch mb;
  mb.ctx = c;
  mb.rows = rows;
  Tensor tokens, mask;  // [b, n] (n = T + 1) and its mask (undefined: all real)
  std::vector<std::int64_t> targets;
  if (o.truncate) {
    // Per-row lengths from the global sample ids (AutoregressiveWrapper::truncate_key's stream).
    const Truncated t = random_truncate(Tensor::from_vector(x, {rows, cols}, dev), Tensor(), o.pad_value,
                                        ar_truncate_key("", c, rows));
    tokens = t.tokens;
    mask = t.mask;
    const std::int64_t n = tokens.dim(1);
    const std::vector<std::int64_t> tok = tokens.to_vector<std::int64_t>();
    const std::vector<std::uint8_t> m = mask.to_vector<std::uint8_t>();
    targets.resize(static_cast<std::size_t>(rows * (n - 1)));
    for (std::int64_t b = 0; b < rows; ++b)
      for (std::int64_t j = 0; j + 1 < n; ++j) {
        const auto src = static_cast<std::size_t>(b * n + j + 1);
        targets[static_cast<std::size_t>(b * (n - 1) + j)] = m[src] ? tok[src] : o.ignore_index;
      }
  } else {
    tokens = Tensor::from_vector(x, {rows, cols}, dev);
    targets.resize(static_cast<std::size_t>(rows * (cols - 1)));
    for (std::int64_t b = 0; b < rows; ++b)
      for (std::int64_t j = 0; j + 1 < cols; ++j)
        targets[static_cast<std::size_t>(b * (cols - 1) + j)] = x[static_cast<std::size_t>(b * cols + j + 1)];
  }
  mb.T = tokens.dim(1) - 1;
  mb.targets = Tensor::from_vector(targets, {rows * mb.T}, dev);
  Context lc = c;
  lc.input_mask = mask.defined() ? be.narrow(mask, 1, 0, mb.T) : Tensor();
  // Autopadding as the Autopadder does it (left, the wrapper's side): a no-op when T is a
  // multiple of the buckets (then no mask is invented).
  Padded p = autopad_inputs(be.narrow(tokens, 1, 0, mb.T), lc, o.multiple, 1, /*pad_left=*/true);
  mb.inputs = p.x;
  mb.ctx = p.ctx;
  mb.ctx.dcontext = nullptr;
  mb.pad = p.pad;
  mb.Tp = mb.T + p.pad;
  mb.ignore_index = o.ignore_index;
  return mb;
}

Stage::Stage(const LMConfig& cfg, ParamSet& ps, LayerRange layers)
    : lm_(std::make_unique<SinkhornLM>(cfg, ps, "", layers)), D_(cfg.dim) {
  SK_CHECK(!cfg.receives_context && !cfg.return_embeddings,
           "pipeline stage: the model must be a plain language model (no receives_context, no return_embeddings)");
}

std::int64_t Stage::act_numel(const MicroBatch& mb) const {
  return first() ? 0 : streams() * mb.rows * mb.Tp * D_;
}

std::int64_t Stage::grad_numel(const MicroBatch& mb) const {
  if (last()) return 0;
  return (lm_->stack().reversible() ? 4 : 1) * mb.rows * mb.Tp * D_;
}

Streams Stage::unpack(const Tensor& msg, const MicroBatch& mb, int first_stream, int count) const {
  const std::int64_t n = mb.rows * mb.Tp * D_;
  SK_CHECK(msg.defined() && msg.numel() >= (first_stream + count) * n, "pipeline stage: a boundary message of ",
           msg.defined() ? msg.numel() : 0, " elements is too short for ", first_stream + count, " x [", mb.rows, ", ",
           mb.Tp, ", ", D_, "]");
  Tensor flat = msg.reshape({-1});
  auto at = [&](int i) { return flat.slice0((first_stream + i) * n, (first_stream + i + 1) * n).reshape({mb.rows, mb.Tp, D_}); };
  Streams s;
  s.a = at(0);
  if (count == 2) s.b = at(1);
  return s;
}

Tensor Stage::pack(const std::vector<Tensor>& ts) const {
  const std::int64_t n = ts[0].numel();
  Tensor out = Tensor::empty({static_cast<std::int64_t>(ts.size()) * n}, DType::f32, ts[0].device());
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const auto k = static_cast<std::int64_t>(i);
    Tensor view = out.slice0(k * n, (k + 1) * n);
    view.copy_from(ts[i].reshape({n}));
  }
  return out;
}

Streams Stage::stage_input(const MicroBatch& mb, const Tensor& in, LMStash& emb) const {
  if (first()) return lm_->stack().enter(lm_->embed_forward(mb.inputs, emb, mb.ctx));
  return unpack(in, mb, 0, streams());
}

Tensor Stage::head_logits(const MicroBatch& mb, const Tensor& out, LMStash& st) const {
  Backend& be = mb.ctx.backend();
  Tensor logits = lm_->head_forward(out, st, mb.ctx);  // [b, Tp, V]
  if (mb.pad > 0) logits = be.narrow(logits, 1, mb.pad, mb.T);
  return logits.reshape({mb.rows * mb.T, logits.dim(2)});
}

std::vector<std::int64_t> Stage::param_events(const ParamSet& ps) const {
  const auto& params = ps.params();
  std::vector<std::int64_t> ev(params.size(), kHeadGrads);
  const LayerStack& stack = lm_->stack();
  for (std::int64_t L = stack.first_block(); L < stack.end_block(); ++L) {
    const auto [b, e] = stack.block_params(L);
    for (std::size_t i = b; i < e; ++i) ev[i] = L;
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string& n = params[i]->name();
    if (n.rfind("to_token_emb.", 0) == 0 || n.rfind("axial_pos_emb.", 0) == 0 ||
        n.rfind("sinkhorn_transformer.project_in.", 0) == 0)
      ev[i] = kEmbedGrads;
  }
  return ev;
}

Tensor Stage::forward(const MicroBatch& mb, const Tensor& in, MicroState& st, bool backward_follows, float loss_scale,
                      const GradsReady* ready) {
  Backend& be = mb.ctx.backend();
  const bool rev = lm_->stack().reversible();
  st = MicroState{};
  LMStash emb;  // a reversible first stage recomputes the embedding in backward instead of keeping it
  Streams y = lm_->stack().forward_streams(stage_input(mb, in, rev || !backward_follows ? emb : st.lm), st.stack, mb.ctx);
  if (!last()) {
    Tensor msg = pack(y.list());
    if (!backward_follows) {
      st.stack = StackStash{};
    } else if (rev) {  // keep only which blocks ran: the next stage sends the outputs back with the gradient
      st.stack.y1 = Tensor();
      st.stack.y2 = Tensor();
    }
    return msg;
  }
  LMStash head;
  const Tensor logits = head_logits(mb, lm_->stack().leave(y), head);  // [b*T, V]
  y = Streams{};
  CrossEntropyOut ce = be.cross_entropy(logits, mb.targets, mb.ignore_index);
  st.loss_t = ce.loss;  // read later, all micro-batches at once (no host sync per micro-batch)
  st.count = ce.count;
  if (!backward_follows) {
    st.stack = StackStash{};
    return Tensor();
  }
  Tensor d = be.cross_entropy_backward(loss_scale, logits, mb.targets, ce, mb.ignore_index);
  d = d.reshape({mb.rows, mb.T, d.dim(1)});
  if (mb.pad > 0) d = be.pad(d, 1, mb.pad, 0, 0.f);
  st.dout = lm_->stack().leave_backward(lm_->head_backward(std::move(d), head, mb.ctx));
  if (ready) (*ready)(kHeadGrads);
  return Tensor();
}

namespace {
// Drops what backward no longer needs; the loss and count stay.
void release(MicroState& st) {
  st.lm = LMStash{};
  st.stack = StackStash{};
  st.dout = Streams{};
}
}  // namespace

Tensor Stage::backward(const MicroBatch& mb, const Tensor& in, MicroState& st, const GradsReady* ready) {
  const bool rev = lm_->stack().reversible();
  Streams dy;
  if (last()) {
    dy = std::move(st.dout);
  } else {
    dy = unpack(in, mb, 0, streams());
    if (rev) {  // the outputs to rebuild from: the inputs the next stage rebuilt
      const Streams y = unpack(in, mb, 2, 2);
      st.stack.y1 = y.a;
      st.stack.y2 = y.b;
    }
  }
  Streams dx = lm_->stack().backward_streams(std::move(dy), st.stack, mb.ctx,
                                             ready ? std::function<void(std::int64_t)>(*ready) : nullptr);
  if (first()) {
    Tensor d = lm_->stack().enter_backward(dx);
    dx = Streams{};
    if (rev) {
      LMStash emb;
      lm_->embed_forward(mb.inputs, emb, mb.ctx);  // recompute: same ops, same Philox keys
      lm_->embed_backward(std::move(d), emb, mb.ctx);
    } else {
      lm_->embed_backward(std::move(d), st.lm, mb.ctx);
    }
    if (ready) (*ready)(kEmbedGrads);
    release(st);
    return Tensor();
  }
  Tensor msg = rev ? pack({dx.a, dx.b, st.stack.rebuilt1, st.stack.rebuilt2}) : pack({dx.a});
  release(st);
  return msg;
}

Tensor Stage::logits(const MicroBatch& mb, const Tensor& in) {
  SK_CHECK(last(), "Stage::logits on a stage without the head");
  LMStash emb, head;
  StackStash stash;
  Streams y = lm_->stack().forward_streams(stage_input(mb, in, emb), stash, mb.ctx);
  stash = StackStash{};
  Tensor l = head_logits(mb, lm_->stack().leave(y), head);
  return l.reshape({mb.rows, mb.T, l.dim(1)});
}

}  // namespace sk
