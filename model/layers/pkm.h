// pkm.h — product-key memory, as the stack constructs it: PKM(D, num_keys) with 4 heads, 32 slots
// per head, query head width 256, sub-key width 128, all dropouts 0 (model-spec §14).
//
//   q  = to_queries(x)                                   [R, 1024]   (R = B·T, no bias)
//   qn = BatchNorm1d(q)                                  [R, 1024]   train: batch stats; eval: running
//   s[h, p, r, n] = qn[r, p·512 + h·128 : +128] · keys[h, n, p, :]   [4, 2, R, nk]
//   per half p: top 32 (a_p, i_p); candidates a_0[α] + a_1[β] with index i_0[α]·nk + i_1[β]
//   top 32 candidates -> softmax weights w [4, R, 32]; out[r] = Σ_h Σ_j w · values[index]
//
// Parameters (prefix P = wrapper path + "fn."): P+"to_queries.weight" [1024, D],
// P+"norm.fn.weight"/"bias" [1024], P+"keys" [4, nk, 2, 128], P+"values.weight" [nk², D] (group
// pkm_values); buffers P+"norm.fn.running_mean"/"running_var" f32 [1024],
// P+"norm.fn.num_batches_tracked" i64 [].
//
// Running statistics are updated exactly once per training forward (momentum 0.1, unbiased
// variance, num_batches_tracked += 1); a reversible recompute (Context::recompute) skips the
// update, which corrects the reference's double update (defect D7).
#pragma once
#include <cstdint>
#include <string>

#include "model/layers/layer.h"
#include "model/layers/linear.h"

namespace sk {

struct PKMConfig {
  std::int64_t dim = 0;          // D (divisible by heads)
  std::int64_t num_keys = 128;   // nk (>= topk)
  std::int64_t heads = 4;
  std::int64_t topk = 32;
  std::int64_t dim_head = 256;   // query width per head; sub-keys are dim_head / 2 wide
};

struct PKMStash {
  LinearStash to_q;   // x [B, T, D]
  Tensor xhat;        // BatchNorm-normalised queries before the affine step [R, 1024]
  Tensor rstd;        // 1/√(var + eps) used [1024]
  Tensor qh;          // queries per (head, half) [H, 2, R, dk]
  Tensor idx;         // chosen sub-keys per half, i64 [H, 2, R, K]
  Tensor final_idx;   // chosen candidates (into K·K), i64 [H·R, K]
  Tensor w;           // softmax weights [H, R, K]
  Tensor vidx;        // value rows, i64 [H, R, K]
  bool batch_stats = false;  // training-mode BatchNorm
};

class PKM : public Residual {
 public:
  PKM(const PKMConfig& cfg, ParamSet& ps, const std::string& prefix);
  Tensor forward(const Tensor& x, Stash& s, const Context& c) const override;  // [B, T, D] -> [B, T, D]
  Tensor backward(const Tensor& dfx, Stash& s, const Context& c) override;     // -> dx [B, T, D]
  const PKMConfig& config() const { return cfg_; }

 private:
  PKMConfig cfg_;
  Linear to_queries_;
  Parameter* bn_w_ = nullptr;
  Parameter* bn_b_ = nullptr;
  Parameter* keys_ = nullptr;
  Parameter* values_ = nullptr;
  Buffer* running_mean_ = nullptr;
  Buffer* running_var_ = nullptr;
  Buffer* num_batches_ = nullptr;
};

}  // namespace sk
