// feedforward.h — FeedForward (model-spec §7): FF(x) = w2( dropout( act(w1(x)) ) ).
//   plain: w1 = Linear(D, 4D), act = GELU (erf form)
//   GLU:   w1 = Linear(D, 8D), split into a (first half) and v; act = GELU(a) ⊙ v
// ff_dropout sits after the activation (before w2), model-spec §17.
//
// Chunking (`chunks` = c > 1, the reference's Chunk(c, FF, along_dim=1)): the sequence axis is cut
// into pieces of ceil(T / c) positions (torch.chunk; the last may be shorter) and each piece runs
// on its own. Memory is really bounded by one chunk: forward keeps no per-chunk activation (the
// stash holds only the caller's input x), and backward recomputes w1/act of one chunk at a time
// before back-propagating it. With c == 1 the hidden activations are stashed instead (no recompute).
// Dropout masks are keyed per chunk: Context::key(layer_id, chunk index).
#pragma once
#include <cstdint>
#include <string>

#include "model/layers/layer.h"
#include "model/layers/linear.h"

namespace sk {

struct FeedForwardConfig {
  std::int64_t dim = 0;     // D
  bool glu = false;
  float dropout = 0.f;      // ff_dropout
  std::int64_t chunks = 1;  // ff_chunks (1: no chunking)
};

struct FeedForwardStash {
  Tensor x;    // input [B, T, D] (shared with the caller)
  // One chunk: the whole sequence's. Chunked: only in a reversible block's recompute (Context::
  // recompute, where backward follows at once), the FIRST chunk's, which backward then uses
  // instead of computing it a third time; otherwise undefined.
  Tensor pre;  // w1 output [B, T or t, F1]
  Tensor h;    // w2 input (activation after dropout) [B, T or t, 4D]
};

class FeedForward : public Residual {
 public:
  // Registers prefix+"w1.weight" [F1, D], "w1.bias", "w2.weight" [D, 4D], "w2.bias" [D].
  FeedForward(const FeedForwardConfig& cfg, ParamSet& ps, const std::string& prefix, std::uint64_t layer_id);

  Tensor forward(const Tensor& x, Stash& s, const Context& c) const override;     // [B, T, D] -> [B, T, D]
  Tensor backward(const Tensor& dfx, Stash& s, const Context& c) override;        // -> dx [B, T, D]

  const FeedForwardConfig& config() const { return cfg_; }
  // Number of chunks and chunk length actually used for a sequence of length T (torch.chunk).
  static std::int64_t chunk_len(std::int64_t T, std::int64_t chunks);

 private:
  // One chunk: xc [B, t, D] -> (pre [B, t, F1], h [B, t, 4D]) with dropout keyed by `chunk`.
  void hidden(const Tensor& xc, Tensor& pre, Tensor& h, std::int64_t chunk, const Context& c) const;
  // Back through one chunk given its dy [B, t, D]; returns dxc [B, t, D].
  Tensor chunk_backward(const Tensor& dyc, const Tensor& xc, const Tensor& pre, const Tensor& h, std::int64_t chunk,
                        const Context& c);

  FeedForwardConfig cfg_;
  Linear w1_, w2_;
  std::uint64_t layer_id_ = 0;
};

}  // namespace sk
