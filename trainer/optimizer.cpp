// optimizer.cpp — AdamW over parameter-group spans of the flat parameter buffer.
#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>

namespace sk {

AdamW::AdamW(ParamSet& params, const AdamWConfig& cfg, std::vector<ElemRange> owned) : params_(params), cfg_(cfg) {
  SK_CHECK(params.finalized(), "AdamW: the parameter set must be finalized before building the optimizer");
  SK_CHECK(cfg.lr > 0 && std::isfinite(cfg.lr), "AdamW: lr must be > 0, got ", cfg.lr);
  SK_CHECK(cfg.pkm_lr > 0 && std::isfinite(cfg.pkm_lr), "AdamW: pkm_lr must be > 0, got ", cfg.pkm_lr);
  SK_CHECK(cfg.beta1 >= 0 && cfg.beta1 < 1, "AdamW: beta1 must be in [0, 1), got ", cfg.beta1);
  SK_CHECK(cfg.beta2 >= 0 && cfg.beta2 < 1, "AdamW: beta2 must be in [0, 1), got ", cfg.beta2);
  SK_CHECK(cfg.eps > 0, "AdamW: eps must be > 0, got ", cfg.eps);
  SK_CHECK(cfg.weight_decay >= 0, "AdamW: weight_decay must be >= 0, got ", cfg.weight_decay);

  if (owned.empty()) owned.push_back({0, params.numel()});
  std::int64_t state = 0, prev_end = 0;
  for (ElemRange r : owned) {
    SK_CHECK(r.begin >= prev_end && r.end >= r.begin, "AdamW: owned ranges must be ascending and disjoint");
    prev_end = r.end;
    r.end = std::min(r.end, params.numel());  // padding past the parameters
    if (r.end <= r.begin) continue;
    owned_.push_back(r);
    owned_offset_.push_back(state);
    state += r.size();
  }
  // Parameters in flat-buffer order, cut to the owned ranges, merged into maximal same-group
  // contiguous runs (a span never crosses an owned range's end).
  std::vector<const Parameter*> ps;
  for (const auto& p : params.params()) ps.push_back(p.get());
  std::sort(ps.begin(), ps.end(), [](const Parameter* a, const Parameter* b) { return a->offset < b->offset; });
  for (const ElemRange& r : owned_)
    for (const Parameter* p : ps) {
      const std::int64_t b = std::max(p->offset, r.begin), e = std::min(p->offset + shape_numel(p->shape), r.end);
      if (e <= b) continue;
      if (!spans_.empty() && spans_.back().group == p->group && spans_.back().offset + spans_.back().numel == b)
        spans_.back().numel += e - b;
      else
        spans_.push_back(Span{b, e - b, p->group});
    }
  const Device d = params.device();
  m_ = Tensor::zeros({state}, DType::f32, d);
  v_ = Tensor::zeros({state}, DType::f32, d);
}

std::vector<AdamW::Piece> AdamW::pieces(std::int64_t b, std::int64_t e) const {
  std::vector<Piece> out;
  for (std::size_t i = 0; i < owned_.size(); ++i) {
    const std::int64_t lo = std::max(b, owned_[i].begin), hi = std::min(e, owned_[i].end);
    if (hi > lo) out.push_back({lo, hi, owned_offset_[i] + (lo - owned_[i].begin)});
  }
  return out;
}

double AdamW::group_lr(ParamGroup g) const { return g == ParamGroup::pkm_values ? cfg_.pkm_lr : cfg_.lr; }

double AdamW::group_weight_decay(ParamGroup g) const {
  return g == ParamGroup::no_decay ? 0.0 : cfg_.weight_decay;
}

void AdamW::step(double lr_scale) {
  SK_CHECK(lr_scale >= 0 && std::isfinite(lr_scale), "AdamW::step: lr_scale must be >= 0, got ", lr_scale);
  ++t_;
  Backend& be = backend_for(params_.device());
  Tensor values = params_.flat_values().reshape({-1});
  Tensor grads = params_.flat_grads().reshape({-1});
  for (const Span& s : spans_) {
    Tensor p = values.slice0(s.offset, s.offset + s.numel);
    Tensor g = grads.slice0(s.offset, s.offset + s.numel);
    const std::int64_t at = pieces(s.offset, s.offset + s.numel).front().state_offset;  // a span lies in one range
    Tensor m = m_.slice0(at, at + s.numel);
    Tensor v = v_.slice0(at, at + s.numel);
    be.adamw_update(p, g, m, v, static_cast<float>(group_lr(s.group) * lr_scale), static_cast<float>(cfg_.beta1),
                    static_cast<float>(cfg_.beta2), static_cast<float>(cfg_.eps),
                    static_cast<float>(group_weight_decay(s.group)), t_);
  }
}

void AdamW::load_state(std::int64_t steps, const Tensor& m, const Tensor& v) {
  SK_CHECK(steps >= 0, "AdamW::load_state: step count must be >= 0, got ", steps);
  SK_CHECK(m.dtype() == DType::f32 && m.numel() == m_.numel(), "AdamW::load_state: exp_avg must be f32 with ",
           m_.numel(), " elements, got ", m.str());
  SK_CHECK(v.dtype() == DType::f32 && v.numel() == v_.numel(), "AdamW::load_state: exp_avg_sq must be f32 with ",
           v_.numel(), " elements, got ", v.str());
  m_.copy_from(m.reshape({-1}));
  v_.copy_from(v.reshape({-1}));
  t_ = steps;
}

}  // namespace sk
