// stack.h — the layer stack of SinkhornTransformer (model-spec §6): blocks of (f, g) residual
// functions run sequentially or reversibly, with layer dropout, weight tying and context blocks.
//
// Blocks (§6.1), for layer n = 1..depth:
//   self block     f = wrap(self-attention)      g = wrap(PKM if n ∈ pkm_layers else chunked FF)
//   context block  f = wrap(context attention)   g = wrap(FF, not chunked)      (receives_context)
// wrap = PreNorm(LayerNorm_D) or ReZero (use_rezero). Masks and the context travel in the Context;
// only attention reads them (FF / PKM never see a mask).
//
// Execution:
//   sequential (§6.3): x = x + f(x); x = x + g(x) per block; per-block stashes kept for backward.
//   reversible (§6.4): x1 = x2 = x; x1 += f(x2); x2 += g(x1); output x1 + x2. Forward keeps NO
//     per-block state: the stash holds only the final (y1, y2). Backward walks the blocks in reverse
//     and rebuilds each block's inputs from its outputs (g recomputed on y1, x2 = y2 − g(y1); f
//     recomputed on x2, x1 = y1 − f(x2)), with f/g stashes alive only inside that block, so
//     activation memory does not grow with depth. Recomputation runs with Context::recompute set
//     (dropout redrawn from the same Philox keys; BatchNorm statistics not updated twice, D7).
//   layer dropout (§6.5): training only, p > 0: block L is dropped iff
//     philox_uniform_at(Context::step_key(layer_id, kSiteLayerDrop), L) < p; if every block is
//     dropped the first one runs. The decision is drawn once per (seed, step) for the whole global
//     batch — every micro-batch, rank and pipeline stage of a step agrees. (The reference draws
//     per forward call; a per-call draw would make the trained model depend on how the batch is
//     split.)
//   Each block runs under a Context whose `block` field is L + 1, so a weight-tied module draws a
//   fresh dropout mask at each depth.
//
// Weight tying (§6.6): the self-attention, the self FF (with its chunking) and, with context, the
// context attention and context FF are created once (by the first block that needs them) and reused;
// every later use registers its names as aliases of the same Parameters (gradients sum over uses).
// Wrappers (norms / ReZero gates) and PKMs are never shared.
//
// Parameter names (§6.7), prefix P: sequential P+"layers.layers.{L}.0." (f) / ".1." (g); reversible
// P+"layers.blocks.{L}.f.net." / ".g.net."; wrapped modules under +"fn.", the self FF under
// +"fn.fn." (its Chunk wrapper).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/layers/layer.h"

namespace sk {

struct StackConfig {
  std::int64_t dim = 0, depth = 0, heads = 8, dim_head = 0;  // dim_head resolved
  std::int64_t bucket_size = 64, kv_bucket_size = 64, context_bucket_size = 64;  // resolved
  std::int64_t max_seq_len = 0;
  bool causal = false, non_permutative = true;
  std::int64_t sinkhorn_iter = 5, n_sortcut = 0;
  float temperature = 0.75f;
  bool reversible = false;
  std::int64_t ff_chunks = 1;
  bool ff_glu = false;
  float ff_dropout = 0.f, attn_dropout = 0.f, attn_layer_dropout = 0.f, layer_dropout = 0.f;
  bool weight_tie = false, use_simple_sort_net = false, receives_context = false;
  std::int64_t context_n_sortcut = 0, n_local_attn_heads = 0;
  bool use_rezero = false;
  std::int64_t n_top_buckets = 2;
  std::vector<std::int64_t> pkm_layers;  // 1-based
  std::int64_t pkm_num_keys = 128;
  // Reversible only: keep every block's stash in forward and back-propagate through them without
  // rebuilding the inputs (ordinary backpropagation of the same two-stream formulation: more
  // activation memory, no recompute). Off by default; the tests compare both paths.
  bool keep_activations = false;
};

// The residual stream where a stack (or a pipeline stage's part of it) begins or ends: one tensor
// [B, T, D] for a sequential stack (a), the two streams (a = x1, b = x2) for a reversible one.
struct Streams {
  Tensor a, b;
  std::vector<Tensor> list() const { return b.defined() ? std::vector<Tensor>{a, b} : std::vector<Tensor>{a}; }
};

struct StackStash {
  std::vector<std::int64_t> active;  // block indices (of the whole stack) that ran here, in order
  std::vector<Stash> f, g;           // sequential (or keep_activations): one per active block
  // Reversible: the two output streams [B, T, D] from which backward rebuilds every activation.
  // A pipeline stage may drop them after forward and set them again before backward from the
  // rebuilt inputs of the next stage (backward_streams), so that it rebuilds from exactly the
  // values a single process would.
  Tensor y1, y2;
  // Reversible, after backward: the inputs rebuilt from the outputs (both ≈ the input; their
  // distance from it measures the reconstruction drift). Dropped with the stash.
  Tensor rebuilt1, rebuilt2;
};

// A contiguous range of layers [first, last) of a stack (a pipeline stage's part); last = -1 means
// the whole depth. A layer n (0-based) is one block, or two (self + context) with receives_context.
struct LayerRange {
  std::int64_t first = 0, last = -1;
};

class LayerStack {
 public:
  static constexpr std::uint64_t kSiteLayerDrop = 1;

  // `prefix` is P (e.g. "sinkhorn_transformer."); `layer_id` seeds every layer's Philox id. With a
  // layer range only the blocks of those layers are built (a pipeline stage): every parameter has
  // the name, the Philox id and — through Parameter::init_key — the initial values it has in the
  // whole stack. A weight-tied module is built once per stage that uses it (a replica), under the
  // names of the stage's own blocks; its init_key is the name of its first use in the whole stack.
  LayerStack(const StackConfig& cfg, ParamSet& ps, const std::string& prefix, std::uint64_t layer_id,
             LayerRange range = {});
  ~LayerStack();
  LayerStack(const LayerStack&) = delete;
  LayerStack& operator=(const LayerStack&) = delete;

  Tensor forward(const Tensor& x, StackStash& st, const Context& c) const;  // [B, T, D] -> [B, T, D]
  // dy by value: a caller that moves it in lets the stack free it once both streams have moved on.
  Tensor backward(Tensor dy, StackStash& st, const Context& c);     // -> dx [B, T, D]

  // The same in pieces, for a pipeline stage that holds a range of the blocks:
  //   forward(x) = leave(forward_streams(enter(x))),  backward(dy) = enter_backward(backward_streams(leave_backward(dy))).
  Streams enter(const Tensor& x) const;          // sequential {x}; reversible {x, x}
  Tensor leave(const Streams& y) const;          // sequential y.a; reversible y.a + y.b
  Streams leave_backward(Tensor dy) const;       // gradient of leave: {dy} or {dy, dy}
  Tensor enter_backward(const Streams& dx) const;  // gradient of enter: dx.a or dx.a + dx.b
  // The active blocks of this stack's range. Reversible: the stash keeps the outputs (y1, y2).
  Streams forward_streams(Streams x, StackStash& st, const Context& c) const;
  // Reversible: rebuilds from st.y1 / st.y2 (kept by forward_streams or set by the caller) and
  // leaves the rebuilt inputs in st.rebuilt1 / rebuilt2. `block_done(L)`, when given, is called for
  // every block L of the range in backward order as soon as its backward has returned (or, for a
  // block dropped by layer dropout, when backward passes it): from then on this call adds nothing
  // more to the parameters that block L registered (block_params), which lets a caller start
  // reducing their gradients while the rest of backward runs.
  Streams backward_streams(Streams dy, StackStash& st, const Context& c,
                           const std::function<void(std::int64_t)>& block_done = {});
  // Indices into ParamSet::params() of the parameters block L (of this range) registered: its
  // wrappers, its own modules and the tied modules it used first in the range.
  std::pair<std::size_t, std::size_t> block_params(std::int64_t L) const {
    return block_params_[static_cast<std::size_t>(L - first_block_)];
  }

  // The blocks that run under this context (layer dropout over the whole stack, one decision per
  // step: Context::step_key), in order; active_blocks_here keeps those of this stack's range.
  std::vector<std::int64_t> active_blocks(const Context& c) const;
  std::vector<std::int64_t> active_blocks_here(const Context& c) const;
  std::int64_t num_blocks() const { return total_blocks_; }       // of the whole stack
  std::int64_t first_block() const { return first_block_; }        // this range: [first_block, end_block)
  std::int64_t end_block() const { return first_block_ + static_cast<std::int64_t>(blocks_.size()); }
  const StackConfig& config() const { return cfg_; }
  bool reversible() const { return cfg_.reversible; }
  // Wrapper path of block L's f (which = 0) or g (which = 1), e.g. "P+layers.layers.3.1.".
  std::string block_path(std::int64_t L, int which) const;

 private:
  struct Block {
    Residual* f = nullptr;
    Residual* g = nullptr;
    bool is_context = false;
  };
  Context block_context(const Context& c, std::int64_t L) const;
  const Block& block(std::int64_t L) const { return blocks_[static_cast<std::size_t>(L - first_block_)]; }
  Block& block(std::int64_t L) { return blocks_[static_cast<std::size_t>(L - first_block_)]; }

  StackConfig cfg_;
  std::string prefix_;
  std::uint64_t layer_id_ = 0;
  std::int64_t total_blocks_ = 0, first_block_ = 0;
  std::vector<std::unique_ptr<Residual>> modules_;   // inner modules (shared ones once)
  std::vector<std::unique_ptr<Residual>> wrappers_;  // one per block side
  std::vector<Block> blocks_;                        // blocks [first_block_, end_block())
  std::vector<std::pair<std::size_t, std::size_t>> block_params_;  // per block of the range
};

}  // namespace sk
