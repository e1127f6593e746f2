// layer.h — what every layer shares: Context (per call), Stash (per micro-batch, owned by the
// caller), and the Residual interface of a block's f / g functions (style.md §3.5).
//
// Shape letters used in comments across model/layers and model/lm:
//   B batch, T sequence, D model width, E embedding width, V vocabulary, H heads, dh head width,
//   HD = H*dh, bs bucket size, kbs key bucket size, nb = T/bs query buckets, nkb key buckets,
//   N = B*Hs merged batch·(sinkhorn) heads, Tc context length.
//
// Gradient contract: backward returns the activation gradient (fresh tensor) and ACCUMULATES
// parameter gradients into Parameter::grad (+=). Tied parameters therefore sum over uses.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "model/core/backend.h"
#include "model/core/param.h"
#include "model/core/philox.h"

namespace sk {

// Operand precision of the Linear-style GEMMs (linear.h: Linear, and the attention projections
// to_q / to_kv / to_out). bf16: both operands are rounded to bf16 and multiplied with fp32
// accumulation into an f32 result, in forward and backward. Master weights, gradients, optimizer
// state, norms, softmax, attention internals and losses stay f32 either way.
enum class Precision { fp32, bf16 };

// Per-call context. Masks and the context tensor are per micro-batch inputs routed to attention.
struct Context {
  Backend* be = nullptr;
  bool training = false;
  // Randomness: every draw is keyed by (seed, step, global sample, layer/block, site) — see key().
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint64_t micro = 0;  // global sample id of the micro-batch's first row
  // Use index of the module being run: the layer stack sets it to block index + 1 for each block,
  // so a weight-tied module (one instance, one layer id, used at every depth) still draws a fresh
  // dropout mask per depth, as the reference does. 0 = not inside a stack (key unchanged).
  std::uint64_t block = 0;
  // True while a reversible block recomputes f/g in backward: randomness is redrawn from the same
  // keys, but side effects that must happen once per forward (BatchNorm running statistics, D7
  // corrected) are skipped.
  bool recompute = false;
  // Precision of the Linear GEMMs (see Precision). fp32 is bit-identical to plain f32 GEMMs.
  Precision gemm_precision = Precision::fp32;
  // Rows of the micro-batch this call runs on are global samples micro, micro + 1, ... Every draw of
  // a training step is keyed so that it does not depend on how the global batch is cut into
  // ranks, pipeline stages or micro-batches:
  //   key(layer, site, rows)   a per-row draw (dropout, attention dropout, gumbel noise, random
  //                            truncation) over a batch-major tensor of `rows` rows: row r draws
  //                            the bits of global sample micro + r (philox.h, RngKey::rows).
  //   step_key(layer, site)    a whole-step draw (layer-drop decisions): the same for every row,
  //                            micro-batch, rank and stage of the step.
  //   call_key(layer, site)    a draw of one call keyed by `micro` as a whole (generation).
  RngKey key(std::uint64_t layer, std::uint64_t site, std::int64_t rows) const {
    RngKey k{seed, rng_stream(step, kRowDraws, module_layer(layer), site)};
    k.row0 = micro;
    k.rows = static_cast<std::uint64_t>(rows);
    return k;
  }
  RngKey step_key(std::uint64_t layer, std::uint64_t site) const {
    return RngKey{seed, rng_stream(step, kStepDraws, module_layer(layer), site)};
  }
  RngKey call_key(std::uint64_t layer, std::uint64_t site) const {
    return RngKey{seed, rng_stream(step, micro, module_layer(layer), site)};
  }
  std::uint64_t module_layer(std::uint64_t layer) const { return block ? rng_mix(layer) ^ block : layer; }
  static constexpr std::uint64_t kRowDraws = 0x524F5753'00000000ull;   // "ROWS": the sample slot of per-row streams
  static constexpr std::uint64_t kStepDraws = 0x53544550'00000000ull;  // "STEP": the sample slot of whole-step streams

  Tensor input_mask;    // u8 [B, T] or undefined (no mask)
  Tensor context;       // f32 [B, Tc, D] (decoder of an encoder/decoder) or undefined
  Tensor context_mask;  // u8 [B, Tc] or undefined
  // Gradient of `context`, accumulated by context-attention backward when defined (f32 [B, Tc, D]).
  // Pointer so that a const Context can still receive it.
  Tensor* dcontext = nullptr;

  Backend& backend() const { return *be; }
};

// Type-erased holder for what a layer's backward needs. Each layer keeps its own named struct:
//   auto& s = stash.get<FeedForwardStash>();
class Stash {
 public:
  template <class T> T& get() {
    if (!ptr_) {
      ptr_ = std::make_shared<Holder<T>>();
    }
    auto* h = dynamic_cast<Holder<T>*>(ptr_.get());
    SK_ASSERT(h != nullptr, "stash holds a different type");
    return h->value;
  }
  void clear() { ptr_.reset(); }
  bool empty() const { return !ptr_; }

 private:
  struct Base {
    virtual ~Base() = default;
  };
  template <class T> struct Holder : Base {
    T value;
  };
  std::shared_ptr<Base> ptr_;
};

// A block's f or g: computes fn(x) (the block adds the skip). Wrappers (PreNorm/ReZero) are
// Residuals too.
struct Residual {
  virtual ~Residual() = default;
  virtual Tensor forward(const Tensor& x, Stash& s, const Context& c) const = 0;
  virtual Tensor backward(const Tensor& dfx, Stash& s, const Context& c) = 0;  // -> dx; params +=
};

}  // namespace sk
