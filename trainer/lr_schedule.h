// lr_schedule.h — the learning rate of each training step: linear warm-up, then cosine decay to
// a floor (or constant).
//
//   step s (0-based, the update being made), warm-up W, decay end S, peak lr, floor min_lr:
//     s < W:        lr * (s + 1) / W
//     cosine:       min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2,  p = clamp((s - W) / (S - W), 0, 1)
//     constant:     lr
// The optimizer gets lr_at(s) / lr as its scale, so every parameter group (pkm_values has its
// own lr) follows the same curve.
#pragma once
#include <cstdint>
#include <string>

namespace sk {

struct LrSchedule {
  enum class Decay { cosine, constant };
  double lr = 3e-4;
  double min_lr = 0.0;
  std::int64_t warmup_steps = 0;
  std::int64_t decay_steps = 1;  // S: where the cosine reaches min_lr (>= warmup_steps)
  Decay decay = Decay::cosine;

  double lr_at(std::int64_t step) const;
  double scale_at(std::int64_t step) const { return lr_at(step) / lr; }
  // Throws sk::Error for inconsistent settings.
  void check() const;
};

LrSchedule::Decay parse_lr_decay(const std::string& s);  // "cosine" | "constant"

}  // namespace sk
