// optimizer.h — AdamW over a ParamSet's parameter groups (architecture.md "Parameters carry a group").
//
//   group        learning rate     weight decay
//   default      lr                weight_decay
//   pkm_values   pkm_lr            weight_decay   (product-key memory value tables, own lr as in
//                                                  the reference's PKM recipe)
//   no_decay     lr                0
//
// State: m and v are flat f32 buffers laid out like ParamSet::flat_values() (element i of m
// belongs to element i of the flat parameters), on the parameters' device, so checkpoints and
// optimizer-state sharding can treat them as plain arrays. Parameters are views into one flat
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

class AdamW {
 public:
  // `params` must be finalized; it must outlive the optimizer. Throws sk::Error for bad settings.
  AdamW(ParamSet& params, const AdamWConfig& cfg);

  // One update of every parameter from its gradient (grads are not zeroed here). lr_scale
  // multiplies both learning rates (the schedule's factor).
  void step(double lr_scale = 1.0);
  std::int64_t steps_taken() const { return t_; }

  const AdamWConfig& config() const { return cfg_; }
  double group_lr(ParamGroup g) const;
  double group_weight_decay(ParamGroup g) const;

  Tensor& exp_avg() { return m_; }     // f32 [numel]
  Tensor& exp_avg_sq() { return v_; }  // f32 [numel]
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
  std::vector<Span> spans_;
  Tensor m_, v_;
  std::int64_t t_ = 0;
};

}  // namespace sk
