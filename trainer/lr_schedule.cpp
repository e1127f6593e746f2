// lr_schedule.cpp — see lr_schedule.h.
#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "model/core/error.h"

namespace sk {

double LrSchedule::lr_at(std::int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (decay == Decay::constant) return lr;
  const double span = static_cast<double>(std::max<std::int64_t>(1, decay_steps - warmup_steps));
  const double p = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
}

void LrSchedule::check() const {
  SK_CHECK(lr > 0 && std::isfinite(lr), "lr schedule: lr must be > 0, got ", lr);
  SK_CHECK(min_lr >= 0 && min_lr <= lr, "lr schedule: min_lr must be in [0, lr = ", lr, "], got ", min_lr);
  SK_CHECK(warmup_steps >= 0, "lr schedule: warm-up steps must be >= 0, got ", warmup_steps);
  SK_CHECK(decay_steps >= warmup_steps, "lr schedule: decay steps (", decay_steps, ") must be >= warm-up steps (",
           warmup_steps, ")");
}

LrSchedule::Decay parse_lr_decay(const std::string& s) {
  if (s == "cosine") return LrSchedule::Decay::cosine;
  if (s == "constant") return LrSchedule::Decay::constant;
  throw Error(cat("lr_decay = \"", s, "\": must be \"cosine\" or \"constant\""));
}

}  // namespace sk
