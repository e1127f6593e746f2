// model_test_util.h — helpers shared by the model tests: a CPU context, small configs, random
// tensors, and central finite differences of a scalar function of the parameters.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "model/core/backend.h"
#include "model/core/param.h"
#include "model/layers/layer.h"
#include "model/lm/config.h"

namespace sk::test {

inline Context cpu_context(bool training = false, std::uint64_t seed = 1) {
  Context c;
  c.be = &backend_for(Device::cpu);
  c.training = training;
  c.seed = seed;
  return c;
}

inline Tensor randn(const Shape& s, std::uint64_t seed, float scale = 1.f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
  for (auto& x : v) x = nd(g);
  return Tensor::from_vector(v, s);
}

inline Tensor rand_tokens(std::int64_t B, std::int64_t T, std::int64_t V, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_int_distribution<std::int64_t> ud(0, V - 1);
  std::vector<std::int64_t> v(static_cast<std::size_t>(B * T));
  for (auto& x : v) x = ud(g);
  return Tensor::from_vector(v, {B, T});
}

// Mask u8 [B, T]: row b has its first `real[b]` positions real (right padding).
inline Tensor right_pad_mask(std::int64_t B, std::int64_t T, const std::vector<std::int64_t>& real) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(B * T), 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < real[static_cast<std::size_t>(b)]; ++t) m[static_cast<std::size_t>(b * T + t)] = 1;
  return Tensor::from_vector(m, {B, T});
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<float>(), y = b.to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

inline double rel_err(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - double(y[i])) * (double(x[i]) - double(y[i]));
    den += double(y[i]) * double(y[i]);
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// A small LM configuration (every test tweaks what it covers).
inline LMConfig tiny_lm(bool causal) {
  LMConfig c;
  c.num_tokens = 23;
  c.dim = 16;
  c.max_seq_len = 32;
  c.depth = 2;
  c.heads = 2;
  c.bucket_size = 8;
  c.causal = causal;
  c.n_top_buckets = 1;
  return c;
}

// Sets every parameter (and the flat buffer) to small random values.
inline void randomize(ParamSet& ps, std::uint64_t seed, float scale = 0.3f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(static_cast<std::size_t>(ps.numel()));
  for (auto& x : v) x = nd(g);
  ps.flat_values().copy_from(Tensor::from_vector(v, {ps.numel()}));
}

// Compares analytic gradients with central differences at `samples` entries per parameter.
// `loss` evaluates the scalar loss at the current parameter values.
//
// Rounding noise. The forward runs in float32, so the loss carries rounding noise of some size σ
// that depends on the machine's BLAS kernel (AVX2 and AVX-512 kernels round differently). It is
// measured, not assumed: σ ≈ median |L(θ+h e_k) − 2L(θ) + L(θ−h e_k)| / (0.674·√6) over 24 random
// entries k the loss depends on (|gradient| ≥ 1 % of the largest) with h = 1e-5 (the true second difference, h²·L'', is ~1e-10 of that; the median ignores
// a rare step across a decision; at least |L|·2⁻²⁴, the rounding of an f32 loss value). The Richardson estimate (4·D(eps/2) − D(eps))/3 then carries
// noise of standard deviation 1.9·σ/eps and D(eps) − D(eps/2) 1.6·σ/eps; four standard deviations
// of each are allowed on top of the tolerances below, so a test passes or fails on the gradient, not
// on the kernel. (A wrong backward term is an O(1) error: far above the noise.)
//
// Discrete choices. Sort nets and PKM make discrete choices, so a perturbation can cross a decision
// boundary. Two ways to find such entries:
//  * `decisions` given: it returns the discrete choices of a forward at the current values (e.g.
//    the selected indices, as sets); an entry is skipped, and counted, exactly when one of its
//    perturbed evaluations makes other choices than the unperturbed parameters.
//  * otherwise an entry whose estimates at eps and eps/2 disagree by more than 5 % (of the larger
//    of them and the parameter's gradient scale) plus the noise allowance is taken to contain a
//    jump: skipped and counted; the caller bounds the skips.
// Error of an entry: max(0, |fd − an| − noise allowance) / scale, scale = max(the parameter's
// largest |gradient|, `floor`).
struct GradCheck {
  double worst = 0;
  std::string worst_name;
  int checked = 0, skipped = 0;
  double num = 0, den = 0;  // Σ (fd − an)², Σ an² over the checked entries
  double noise = 0;         // measured rounding noise σ of the loss
  double aggregate() const { return den > 0 ? std::sqrt(num / den) : std::sqrt(num); }
};
using Decisions = std::function<std::vector<std::int64_t>()>;
inline GradCheck finite_difference_check(ParamSet& ps, const std::function<double()>& loss, int samples, double eps,
                                         std::uint64_t seed, const Decisions& decisions = {}, double floor = 1e-3) {
  GradCheck r;
  std::mt19937_64 g(seed);
  std::vector<float> grads = ps.flat_grads().to_vector<float>();
  std::vector<float> base = ps.flat_values().to_vector<float>();
  const std::vector<std::int64_t> base_decisions = decisions ? decisions() : std::vector<std::int64_t>{};
  bool crossed = false;  // a perturbed evaluation of the current entry changed a decision
  auto at = [&](std::size_t k, double delta, bool track = true) {
    std::vector<float> v = base;
    v[k] = static_cast<float>(double(base[k]) + delta);
    ps.flat_values().copy_from(Tensor::from_vector(v, {ps.numel()}));
    const double l = loss();
    if (track && decisions && decisions() != base_decisions) crossed = true;
    return l;
  };
  {  // rounding noise of the loss (see above)
    ps.flat_values().copy_from(Tensor::from_vector(base, {ps.numel()}));
    const double l0 = loss();
    // Entries the loss really depends on (an unused embedding row would not stir the rounding).
    double gmax = 0;
    for (float v : grads) gmax = std::max(gmax, double(std::abs(v)));
    std::vector<std::size_t> live;
    for (std::size_t k = 0; k < grads.size(); ++k)
      if (std::abs(grads[k]) >= 1e-2 * gmax) live.push_back(k);
    std::uniform_int_distribution<std::size_t> any(0, live.size() - 1);
    std::vector<double> d2;
    for (int i = 0; i < 24; ++i) {
      const std::size_t k = live[any(g)];
      d2.push_back(std::abs(at(k, 1e-5, false) - 2 * l0 + at(k, -1e-5, false)));
    }
    std::nth_element(d2.begin(), d2.begin() + 12, d2.end());
    // At least the float32 rounding of the loss value itself (a loss returned as an f32 scalar).
    r.noise = std::max(d2[12] / (0.674 * std::sqrt(6.0)), std::abs(l0) * 0x1p-24);
  }
  const double fd_allow = 4 * 1.9 * r.noise / eps, diff_allow = 4 * 1.6 * r.noise / eps;
  for (const auto& p : ps.params()) {
    const std::int64_t n = shape_numel(p->shape);
    // Scale of this parameter's gradient, to judge the entries relative to it.
    double gscale = 0;
    for (std::int64_t i = 0; i < n; ++i)
      gscale = std::max(gscale, std::abs(double(grads[static_cast<std::size_t>(p->offset + i)])));
    std::uniform_int_distribution<std::int64_t> ud(0, n - 1);
    for (int s = 0; s < samples; ++s) {
      const auto k = static_cast<std::size_t>(p->offset + ud(g));
      crossed = false;
      const double fd1 = (at(k, eps) - at(k, -eps)) / (2 * eps);
      const double fd2 = (at(k, eps / 2) - at(k, -eps / 2)) / eps;
      const double scale = std::max(gscale, floor);
      const bool jump = decisions ? crossed
                                  : std::abs(fd1 - fd2) > 0.05 * std::max({std::abs(fd1), std::abs(fd2), scale}) + diff_allow;
      if (jump) {
        if (std::getenv("SK_FD_VERBOSE"))
          std::printf("SKIP %s[%zu] fd1=%.6g fd2=%.6g an=%.6g scale=%.3g\n", p->name().c_str(),
                      k - static_cast<std::size_t>(p->offset), fd1, fd2, double(grads[k]), scale);
        ++r.skipped;
        continue;
      }
      ++r.checked;
      const double an = grads[k];
      const double fd = (4 * fd2 - fd1) / 3;  // Richardson: cancels the O(eps²) truncation error
      r.num += (fd - an) * (fd - an);
      if (std::getenv("SK_FD_VERBOSE"))
        std::printf("fd %s[%zu] fd=%.6g an=%.6g scale=%.3g allow=%.3g (fd1 %.6g fd2 %.6g)\n", p->name().c_str(),
                    k - static_cast<std::size_t>(p->offset), fd, an, scale, fd_allow, fd1, fd2);
      r.den += an * an;
      const double err = std::max(0.0, std::abs(fd - an) - fd_allow) / scale;
      if (err > r.worst) {
        r.worst = err;
        r.worst_name = p->name() + "[" + std::to_string(k - static_cast<std::size_t>(p->offset)) +
                       "] fd=" + std::to_string(fd) + " an=" + std::to_string(an);
      }
    }
  }
  ps.flat_values().copy_from(Tensor::from_vector(base, {ps.numel()}));
  if (std::getenv("SK_FD_VERBOSE"))
    std::printf("noise sigma %.3g -> allowance %.3g on each estimate (eps %.3g)\n", r.noise, fd_allow, eps);
  return r;
}

// The choices of index tensor `t` [..., K] as sets: each last-axis row sorted, so that the same
// selection in another order counts as the same decision.
inline std::vector<std::int64_t> index_sets(const Tensor& t) {
  std::vector<std::int64_t> v = t.to_vector<std::int64_t>();
  const std::int64_t k = t.ndim() ? t.dim(-1) : 1;
  for (std::size_t i = 0; k > 0 && i < v.size(); i += static_cast<std::size_t>(k))
    std::sort(v.begin() + static_cast<std::ptrdiff_t>(i), v.begin() + static_cast<std::ptrdiff_t>(i + static_cast<std::size_t>(k)));
  return v;
}

// Gives a PKM (parameters under `prefix`, e.g. "p.fn.") large decision margins, as the reference
// cases do: every query is a large constant (the BatchNorm bias) plus a small input-dependent part
// (BatchNorm weight `w`), and the sub-keys are arranged so that for every input 4 sub-keys of half 0
// and 8 of half 1 score far above the next 24, which score far above the rest. The 32 selected
// pairs and the 32 selected sub-keys per half are then the same for every input, and small
// perturbations of any parameter cannot change them.
inline void pkm_margins(ParamSet& ps, const std::string& prefix, std::int64_t num_keys, float w = 0.05f,
                        std::uint64_t seed = 1) {
  const std::int64_t H = 4, dk = 128, Q = 1024;
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  const float u = 1.f / std::sqrt(float(dk));  // unit direction: all channels equal
  std::vector<float> bias(Q, 10.f * u), weight(Q);
  for (auto& x : weight) x = w * (1.f + 0.2f * nd(g));
  ps.find(prefix + "norm.fn.bias")->value.copy_from(Tensor::from_vector(bias, {Q}));
  ps.find(prefix + "norm.fn.weight")->value.copy_from(Tensor::from_vector(weight, {Q}));
  std::vector<float> keys(static_cast<std::size_t>(H * num_keys * 2 * dk));
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t n = 0; n < num_keys; ++n)
      for (std::int64_t p = 0; p < 2; ++p) {
        const float a = n < (p == 0 ? 4 : 8) ? 1.f : (n < 32 ? 0.5f : 0.f);
        for (std::int64_t d = 0; d < dk; ++d)
          keys[static_cast<std::size_t>(((h * num_keys + n) * 2 + p) * dk + d)] = a * u + 0.02f * nd(g);
      }
  ps.find(prefix + "keys")->value.copy_from(Tensor::from_vector(keys, {H, num_keys, 2, dk}));
  if (Buffer* rm = ps.find_buffer(prefix + "norm.fn.running_mean")) rm->value.copy_from(Tensor::zeros({Q}, DType::f32));
  if (Buffer* rv = ps.find_buffer(prefix + "norm.fn.running_var")) rv->value.copy_from(Tensor::full({Q}, 25.f));
}

}  // namespace sk::test
