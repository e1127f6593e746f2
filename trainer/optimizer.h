// optimizer.h — AdamW over a ParamSet's parameter groups (architecture.md "Parameters carry a group").
//
//   group        learning rate     weight decay
//   default      lr                weight_decay
//   pkm_values   pkm_lr            weight_decay   (product-key memory value tables, own lr as in
//                                                  the reference's PKM recipe)
//   no_decay     lr                0
//
// State: m and v are flat f32 buffers laid out like ParamSet::flat_values() (element i of m
// belongs to element i of the flat parameters), on the parameters' device, so checkpoints can treat
// them as plain arrays. With ZeRO-1 an optimizer owns ranges of the flat buffer: it keeps state for
// those elements only (concatenated) and updates only them. Parameters are views into one flat
// buffer and groups may interleave; the update runs Backend::adamw_update once per maximal run
// of consecutive parameters of one group (a "span"), with a step counter shared by all groups.
#pragma once
#include <cstdint>
#include <vector>

#include "model/core/backend.h"
#include "model/core/param.h"

namespace sk {

struct AdamWConfig {
  double lr = 3e-4;
  double pkm_lr = 1e-2;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

// An element range [begin, end) of the flat parameter buffer.
struct ElemRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

class AdamW {
 public:
  // `params` must be finalized; it must outlive the optimizer. Throws sk::Error for bad settings.
  // `owned` (ZeRO-1): the flat-buffer ranges this optimizer updates and keeps state for (ascending,
  // disjoint; parts past the parameters are ignored); empty = every parameter.
  AdamW(ParamSet& params, const AdamWConfig& cfg, std::vector<ElemRange> owned = {});

  // One update of every parameter from its gradient (grads are not zeroed here). lr_scale
  // multiplies both learning rates (the schedule's factor).
  void step(double lr_scale = 1.0);
  std::int64_t steps_taken() const { return t_; }

  const AdamWConfig& config() const { return cfg_; }
  double group_lr(ParamGroup g) const;
  double group_weight_decay(ParamGroup g) const;

  // State of the owned elements, concatenated in range order: f32 [state_numel()] (without ZeRO the
  // whole flat buffer, element i belonging to flat element i).
  Tensor& exp_avg() { return m_; }
  Tensor& exp_avg_sq() { return v_; }
  std::int64_t state_numel() const { return m_.numel(); }
  const std::vector<ElemRange>& owned() const { return owned_; }
  // Where flat element range [b, e) lies in the state: pieces (flat begin, flat end, state offset).
  struct Piece {
    std::int64_t begin, end, state_offset;
  };
  std::vector<Piece> pieces(std::int64_t b, std::int64_t e) const;
  // Restores state saved from exp_avg()/exp_avg_sq() after `steps` updates (any device).
  void load_state(std::int64_t steps, const Tensor& m, const Tensor& v);

  struct Span {
    std::int64_t offset = 0, numel = 0;
    ParamGroup group = ParamGroup::default_group;
  };
  const std::vector<Span>& spans() const { return spans_; }

 private:
  ParamSet& params_;
  AdamWConfig cfg_;
  std::vector<Span> spans_;        // of the owned elements
  std::vector<ElemRange> owned_;   // clipped to the parameters
  std::vector<std::int64_t> owned_offset_;  // state offset of each owned range
  Tensor m_, v_;
  std::int64_t t_ = 0;
};

}  // namespace sk
