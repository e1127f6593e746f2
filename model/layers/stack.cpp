#include "stack.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "model/layers/attention.h"
#include "model/layers/feedforward.h"
#include "model/layers/pkm.h"
#include "model/layers/wrappers.h"

namespace sk {

namespace {

// Kinds of inner module, for their Philox layer ids.
enum ModuleKind : std::uint64_t { kAttn = 1, kFF = 2, kPKM = 3, kCtxAttn = 4, kCtxFF = 5 };

std::uint64_t module_id(std::uint64_t stack_id, std::int64_t block, ModuleKind kind) {
  return rng_mix(stack_id ^ rng_mix(static_cast<std::uint64_t>(block) * 8 + kind));
}

// A module shared across depth (weight tying): its first use in the whole stack (which keys its
// Philox id and the initial values of its parameters) and, in this stack's range, where its
// parameters were registered.
struct SharedModule {
  bool seen = false;
  std::string first_path;    // module prefix at its first use in the whole stack
  std::int64_t first_block = 0;
  Residual* module = nullptr;  // built here (nullptr until a block of the range uses it)
  std::string path;            // module prefix of the registration here
  std::size_t begin = 0, end = 0;  // its parameters' range in ParamSet::params()
};

}  // namespace

LayerStack::~LayerStack() = default;

std::string LayerStack::block_path(std::int64_t L, int which) const {
  if (cfg_.reversible) return prefix_ + "layers.blocks." + std::to_string(L) + (which == 0 ? ".f.net." : ".g.net.");
  return prefix_ + "layers.layers." + std::to_string(L) + (which == 0 ? ".0." : ".1.");
}

LayerStack::LayerStack(const StackConfig& cfg, ParamSet& ps, const std::string& prefix, std::uint64_t layer_id,
                       LayerRange range)
    : cfg_(cfg), prefix_(prefix), layer_id_(layer_id) {
  SK_CHECK(cfg.depth >= 1, "LayerStack: depth must be >= 1, got ", cfg.depth);
  const std::int64_t last = range.last < 0 ? cfg.depth : range.last;
  SK_CHECK(range.first >= 0 && range.first < last && last <= cfg.depth, "LayerStack: layer range [", range.first, ", ",
           last, ") must be a non-empty part of [0, ", cfg.depth, ")");
  const std::int64_t per_layer = cfg.receives_context ? 2 : 1;
  total_blocks_ = cfg.depth * per_layer;
  first_block_ = range.first * per_layer;

  using Make = std::function<std::unique_ptr<Residual>(const std::string& prefix, std::uint64_t id)>;
  // The module of block L under `path`: created (first use in the range) or, when tied and already
  // created, its parameters aliased under `path`. Blocks outside the range only record where a
  // tied module is first used. Returns nullptr outside the range.
  auto get = [&](SharedModule& sh, const std::string& path, std::int64_t L, ModuleKind kind, bool here,
                 const Make& make) -> Residual* {
    if (!sh.seen) {
      sh.seen = true;
      sh.first_path = path;
      sh.first_block = L;
    }
    if (!here) return nullptr;
    if (cfg.weight_tie && sh.module) {
      for (std::size_t i = sh.begin; i < sh.end; ++i) {
        Parameter* p = ps.params()[i].get();
        SK_ASSERT(p->name().rfind(sh.path, 0) == 0, "tied parameter ", p->name(), " outside ", sh.path);
        ps.alias(p, path + p->name().substr(sh.path.size()));
      }
      return sh.module;
    }
    const std::size_t begin = ps.params().size();
    modules_.push_back(make(path, module_id(layer_id, cfg.weight_tie ? sh.first_block : L, kind)));
    Residual* m = modules_.back().get();
    if (cfg.weight_tie) {
      sh.module = m;
      sh.path = path;
      sh.begin = begin;
      sh.end = ps.params().size();
      for (std::size_t i = sh.begin; i < sh.end; ++i) {
        Parameter* p = ps.params()[i].get();
        p->tied = true;
        p->init_key = sh.first_path + p->name().substr(path.size());
      }
    }
    return m;
  };
  auto wrap = [&](const std::string& path, Residual* fn) -> Residual* {
    if (cfg.use_rezero) wrappers_.push_back(std::make_unique<ReZero>(ps, path, fn));
    else wrappers_.push_back(std::make_unique<PreNorm>(ps, path, cfg.dim, fn));
    return wrappers_.back().get();
  };

  AttentionConfig self_attn;
  self_attn.dim = cfg.dim;
  self_attn.heads = cfg.heads;
  self_attn.dim_head = cfg.dim_head;
  self_attn.bucket_size = cfg.bucket_size;
  self_attn.kv_bucket_size = cfg.kv_bucket_size;
  self_attn.max_seq_len = cfg.max_seq_len;
  self_attn.causal = cfg.causal;
  self_attn.non_permutative = cfg.non_permutative;
  self_attn.sinkhorn_iter = cfg.sinkhorn_iter;
  self_attn.n_sortcut = cfg.n_sortcut;
  self_attn.temperature = cfg.temperature;
  self_attn.attn_dropout = cfg.attn_dropout;
  self_attn.dropout = cfg.attn_layer_dropout;
  self_attn.n_local_attn_heads = cfg.n_local_attn_heads;
  self_attn.use_simple_sort_net = cfg.use_simple_sort_net;
  self_attn.n_top_buckets = cfg.n_top_buckets;
  self_attn.is_context = false;

  // Context attention: non-causal, all heads sinkhorn, attention sort net, context bucket size.
  AttentionConfig ctx_attn = self_attn;
  ctx_attn.kv_bucket_size = cfg.context_bucket_size;
  ctx_attn.causal = false;
  ctx_attn.n_sortcut = cfg.context_n_sortcut;
  ctx_attn.n_local_attn_heads = 0;
  ctx_attn.use_simple_sort_net = false;
  ctx_attn.is_context = true;

  FeedForwardConfig ff{cfg.dim, cfg.ff_glu, cfg.ff_dropout, cfg.ff_chunks};
  FeedForwardConfig ctx_ff{cfg.dim, cfg.ff_glu, cfg.ff_dropout, 1};

  SharedModule sh_attn, sh_ff, sh_ctx_attn, sh_ctx_ff;
  std::int64_t L = 0;
  for (std::int64_t n = 1; n <= cfg.depth; ++n) {
    const bool here = n - 1 >= range.first && n - 1 < last;
    const bool use_pkm = std::find(cfg.pkm_layers.begin(), cfg.pkm_layers.end(), n) != cfg.pkm_layers.end();
    {  // self block
      const std::size_t first_param = ps.params().size();
      const std::string fp = block_path(L, 0), gp = block_path(L, 1);
      Block b;
      Residual* attn = get(sh_attn, fp + "fn.", L, kAttn, here, [&](const std::string& path, std::uint64_t id) {
        return std::unique_ptr<Residual>(std::make_unique<SinkhornSelfAttention>(self_attn, ps, path, id));
      });
      if (here) b.f = wrap(fp, attn);  // registration order as the reference: module, then its wrapper
      Residual* g = nullptr;
      if (use_pkm) {
        if (here) {
          PKMConfig pc;
          pc.dim = cfg.dim;
          pc.num_keys = cfg.pkm_num_keys;
          modules_.push_back(std::make_unique<PKM>(pc, ps, gp + "fn."));
          g = modules_.back().get();
        }
      } else {
        g = get(sh_ff, gp + "fn.fn.", L, kFF, here, [&](const std::string& path, std::uint64_t id) {
          return std::unique_ptr<Residual>(std::make_unique<FeedForward>(ff, ps, path, id));
        });
      }
      if (here) {
        b.g = wrap(gp, g);
        blocks_.push_back(b);
        block_params_.emplace_back(first_param, ps.params().size());
      }
      ++L;
    }
    if (cfg.receives_context) {  // context block
      const std::size_t first_param = ps.params().size();
      const std::string fp = block_path(L, 0), gp = block_path(L, 1);
      Block b;
      b.is_context = true;
      Residual* attn = get(sh_ctx_attn, fp + "fn.", L, kCtxAttn, here, [&](const std::string& path, std::uint64_t id) {
        return std::unique_ptr<Residual>(std::make_unique<SinkhornSelfAttention>(ctx_attn, ps, path, id));
      });
      if (here) b.f = wrap(fp, attn);
      Residual* g = get(sh_ctx_ff, gp + "fn.", L, kCtxFF, here, [&](const std::string& path, std::uint64_t id) {
        return std::unique_ptr<Residual>(std::make_unique<FeedForward>(ctx_ff, ps, path, id));
      });
      if (here) {
        b.g = wrap(gp, g);
        blocks_.push_back(b);
        block_params_.emplace_back(first_param, ps.params().size());
      }
      ++L;
    }
  }
}

std::vector<std::int64_t> LayerStack::active_blocks(const Context& c) const {
  std::vector<std::int64_t> act;
  const std::int64_t n = num_blocks();
  if (!c.training || cfg_.layer_dropout <= 0.f) {
    for (std::int64_t i = 0; i < n; ++i) act.push_back(i);
    return act;
  }
  Context base = c;
  base.block = 0;
  const RngKey key = base.step_key(layer_id_, kSiteLayerDrop);  // one decision per step, not per micro-batch
  for (std::int64_t i = 0; i < n; ++i)
    if (philox_uniform_at(key, static_cast<std::uint64_t>(i)) >= cfg_.layer_dropout) act.push_back(i);
  if (act.empty()) act.push_back(0);
  return act;
}

std::vector<std::int64_t> LayerStack::active_blocks_here(const Context& c) const {
  std::vector<std::int64_t> act;
  for (std::int64_t L : active_blocks(c))
    if (L >= first_block() && L < end_block()) act.push_back(L);
  return act;
}

Context LayerStack::block_context(const Context& c, std::int64_t L) const {
  Context bc = c;
  bc.block = static_cast<std::uint64_t>(L) + 1;
  return bc;
}

Streams LayerStack::enter(const Tensor& x) const {
  SK_CHECK(x.ndim() == 3 && x.dim(2) == cfg_.dim, "LayerStack: expected input [B, T, ", cfg_.dim, "], got ", x.str());
  return cfg_.reversible ? Streams{x, x} : Streams{x, Tensor()};
}

Tensor LayerStack::leave(const Streams& y) const {
  return cfg_.reversible ? backend_of(y.a).add(y.a, y.b) : y.a;
}

Streams LayerStack::leave_backward(Tensor dy) const {
  return cfg_.reversible ? Streams{dy, dy} : Streams{std::move(dy), Tensor()};
}

Tensor LayerStack::enter_backward(const Streams& dx) const {
  return cfg_.reversible ? backend_of(dx.a).add(dx.a, dx.b) : dx.a;  // both streams started as x
}

Tensor LayerStack::forward(const Tensor& x, StackStash& st, const Context& c) const {
  return leave(forward_streams(enter(x), st, c));
}

Tensor LayerStack::backward(Tensor dy, StackStash& st, const Context& c) {
  return enter_backward(backward_streams(leave_backward(std::move(dy)), st, c));
}

Streams LayerStack::forward_streams(Streams in, StackStash& st, const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(in.a.ndim() == 3 && in.a.dim(2) == cfg_.dim && in.b.defined() == cfg_.reversible,
           "LayerStack: expected ", cfg_.reversible ? "two input streams" : "one input stream", " [B, T, ", cfg_.dim,
           "], got ", in.a.str());
  st = StackStash{};
  st.active = active_blocks_here(c);
  if (!cfg_.reversible) {
    Tensor h = std::move(in.a);  // [B, T, D]
    st.f.resize(st.active.size());
    st.g.resize(st.active.size());
    for (std::size_t i = 0; i < st.active.size(); ++i) {
      const Block& b = block(st.active[i]);
      const Context bc = block_context(c, st.active[i]);
      h = be.add(h, b.f->forward(h, st.f[i], bc));
      h = be.add(h, b.g->forward(h, st.g[i], bc));
    }
    return Streams{h, Tensor()};
  }
  Tensor x1 = std::move(in.a), x2 = std::move(in.b);  // the two streams [B, T, D]
  if (cfg_.keep_activations) {
    st.f.resize(st.active.size());
    st.g.resize(st.active.size());
  }
  for (std::size_t i = 0; i < st.active.size(); ++i) {
    const std::int64_t L = st.active[i];
    const Block& b = block(L);
    const Context bc = block_context(c, L);
    Stash sf, sg;  // dropped at the end of the block unless activations are kept
    Tensor y1 = be.add(x1, b.f->forward(x2, cfg_.keep_activations ? st.f[i] : sf, bc));
    sf.clear();
    Tensor y2 = be.add(x2, b.g->forward(y1, cfg_.keep_activations ? st.g[i] : sg, bc));
    x1 = y1;
    x2 = y2;
  }
  st.y1 = x1;
  st.y2 = x2;
  return Streams{x1, x2};
}

Streams LayerStack::backward_streams(Streams dy, StackStash& st, const Context& c,
                                     const std::function<void(std::int64_t)>& block_done) {
  Backend& be = c.backend();
  // Reports every block of the range from `next` down to `to` (exclusive) as done.
  std::int64_t next = end_block() - 1;
  auto done_down_to = [&](std::int64_t to) {
    for (; next > to; --next)
      if (block_done) block_done(next);
  };
  if (!cfg_.reversible) {
    Tensor d = std::move(dy.a);  // gradient of the residual stream [B, T, D]
    SK_ASSERT(st.f.size() == st.active.size(), "LayerStack::backward without forward");
    for (std::size_t i = st.active.size(); i-- > 0;) {
      done_down_to(st.active[i]);
      Block& b = block(st.active[i]);
      const Context bc = block_context(c, st.active[i]);
      d = be.add(d, b.g->backward(d, st.g[i], bc));
      d = be.add(d, b.f->backward(d, st.f[i], bc));
      st.f[i].clear();
      st.g[i].clear();
      done_down_to(st.active[i] - 1);
    }
    done_down_to(first_block() - 1);
    st = StackStash{};
    return Streams{d, Tensor()};
  }
  SK_ASSERT(st.y1.defined() && st.y2.defined(), "LayerStack::backward without the outputs (y1, y2) to rebuild from");
  Tensor y1 = st.y1, y2 = st.y2, dy1 = std::move(dy.a), dy2 = std::move(dy.b);
  st.y1 = Tensor();
  st.y2 = Tensor();
  if (cfg_.keep_activations) {  // ordinary backpropagation through the kept stashes
    for (std::size_t i = st.active.size(); i-- > 0;) {
      done_down_to(st.active[i]);
      Block& b = block(st.active[i]);
      const Context bc = block_context(c, st.active[i]);
      dy1 = be.add(dy1, b.g->backward(dy2, st.g[i], bc));  // g read y1
      dy2 = be.add(dy2, b.f->backward(dy1, st.f[i], bc));  // f read x2
      st.f[i].clear();
      st.g[i].clear();
      done_down_to(st.active[i] - 1);
    }
    done_down_to(first_block() - 1);
    st = StackStash{};
    return Streams{dy1, dy2};
  }
  for (std::size_t i = st.active.size(); i-- > 0;) {
    done_down_to(st.active[i]);
    Block& b = block(st.active[i]);
    Context bc = block_context(c, st.active[i]);
    bc.recompute = true;
    // Every stream tensor is released as soon as it is dead, so a block's backward (where the
    // step's memory peaks) runs beside as few [B, T, D] tensors as possible.
    Tensor dx1, x2;
    {
      Stash sg;
      Tensor gy1 = b.g->forward(y1, sg, bc);               // recompute g(y1)
      x2 = be.sub(y2, gy1);                                // rebuild x2
      gy1 = Tensor();
      y2 = Tensor();
      dx1 = be.add(dy1, b.g->backward(dy2, sg, bc));       // dx1 = dy1 + (∂g/∂y1)ᵀ dy2
      dy1 = Tensor();
    }
    Tensor dx2, x1;
    {
      Stash sf;
      Tensor fx2 = b.f->forward(x2, sf, bc);               // recompute f(x2)
      x1 = be.sub(y1, fx2);                                // rebuild x1
      fx2 = Tensor();
      y1 = Tensor();
      dx2 = be.add(dy2, b.f->backward(dx1, sf, bc));       // dx2 = dy2 + (∂f/∂x2)ᵀ dx1
      dy2 = Tensor();
    }
    y1 = std::move(x1);
    y2 = std::move(x2);
    dy1 = std::move(dx1);
    dy2 = std::move(dx2);
    done_down_to(st.active[i] - 1);
  }
  done_down_to(first_block() - 1);
  st = StackStash{};
  st.rebuilt1 = y1;
  st.rebuilt2 = y2;
  return Streams{dy1, dy2};
}

}  // namespace sk
