// AdamW over parameter groups, checked against a float64 re-implementation on every backend.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/core/backend.h"
#include "trainer/optimizer.h"

namespace sk {
namespace {

class AdamWTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (GetParam() == Device::cuda && !has_backend(Device::cuda)) GTEST_SKIP() << "no CUDA backend/GPU";
  }
};

// Three groups, interleaved: default, pkm_values, default, no_decay, no_decay, pkm_values.
void build(ParamSet& ps, Device d) {
  ps.add("a.weight", {3, 5}, Init::Normal(0.5f));
  ps.add("pkm.values.weight", {7, 2}, Init::Normal(0.5f), ParamGroup::pkm_values);
  ps.add("b.weight", {4}, Init::Uniform(1.f));
  ps.add("norm.weight", {6}, Init::Ones(), ParamGroup::no_decay);
  ps.add("norm.bias", {6}, Init::Zeros(), ParamGroup::no_decay);
  ps.add("pkm2.values.weight", {3}, Init::Normal(0.1f), ParamGroup::pkm_values);
  ps.finalize(d, 11);
}

TEST_P(AdamWTest, SpansCoalesceConsecutiveSameGroupParameters) {
  ParamSet ps;
  build(ps, GetParam());
  AdamW opt(ps, AdamWConfig{});
  const auto& s = opt.spans();
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].group, ParamGroup::default_group);
  EXPECT_EQ(s[0].numel, 15);
  EXPECT_EQ(s[1].group, ParamGroup::pkm_values);
  EXPECT_EQ(s[2].group, ParamGroup::default_group);
  EXPECT_EQ(s[3].group, ParamGroup::no_decay);
  EXPECT_EQ(s[3].numel, 12);  // two no_decay parameters merged
  EXPECT_EQ(s[4].offset + s[4].numel, ps.numel());
}

TEST_P(AdamWTest, MatchesFloat64ReferencePerGroup) {
  const Device d = GetParam();
  ParamSet ps;
  build(ps, d);
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.pkm_lr = 5e-2;
  cfg.beta1 = 0.8;
  cfg.beta2 = 0.95;
  cfg.eps = 1e-6;
  cfg.weight_decay = 0.1;
  AdamW opt(ps, cfg);
  EXPECT_DOUBLE_EQ(opt.group_lr(ParamGroup::pkm_values), 5e-2);
  EXPECT_DOUBLE_EQ(opt.group_weight_decay(ParamGroup::no_decay), 0.0);
  EXPECT_DOUBLE_EQ(opt.group_weight_decay(ParamGroup::pkm_values), 0.1);

  const std::int64_t n = ps.numel();
  std::vector<double> p(static_cast<std::size_t>(n)), m(p.size(), 0.0), v(p.size(), 0.0);
  {
    auto init = ps.flat_values().to_vector<float>();
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = init[i];
  }
  std::vector<ParamGroup> group(p.size());
  for (const auto& prm : ps.params())
    for (std::int64_t i = 0; i < shape_numel(prm->shape); ++i) group[static_cast<std::size_t>(prm->offset + i)] = prm->group;

  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  const double scales[] = {1.0, 0.5, 0.25};
  for (int t = 1; t <= 3; ++t) {
    std::vector<float> g(p.size());
    for (auto& x : g) x = nd(rng);
    ps.flat_grads().copy_from(Tensor::from_vector(g, {n}, Device::cpu));
    opt.step(scales[t - 1]);
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double lr = (group[i] == ParamGroup::pkm_values ? cfg.pkm_lr : cfg.lr) * scales[t - 1];
      const double wd = group[i] == ParamGroup::no_decay ? 0.0 : cfg.weight_decay;
      m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g[i];
      v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * double(g[i]) * g[i];
      const double mh = m[i] / (1 - std::pow(cfg.beta1, t)), vh = v[i] / (1 - std::pow(cfg.beta2, t));
      p[i] -= lr * (mh / (std::sqrt(vh) + cfg.eps) + wd * p[i]);
    }
  }
  EXPECT_EQ(opt.steps_taken(), 3);
  auto got = ps.flat_values().to_vector<float>();
  auto gm = opt.exp_avg().to_vector<float>();
  auto gv = opt.exp_avg_sq().to_vector<float>();
  for (std::size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(got[i], p[i], 1e-5 * (1 + std::abs(p[i]))) << i;
    EXPECT_NEAR(gm[i], m[i], 1e-5) << i;
    EXPECT_NEAR(gv[i], v[i], 1e-5) << i;
  }
}

TEST_P(AdamWTest, LoadStateContinuesIdentically) {
  const Device d = GetParam();
  ParamSet a, b;
  build(a, d);
  build(b, d);
  AdamWConfig cfg;
  AdamW oa(a, cfg), ob(b, cfg);
  std::vector<float> g(static_cast<std::size_t>(a.numel()));
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.3f * static_cast<float>(i));
  const Tensor gt = Tensor::from_vector(g, {a.numel()}, Device::cpu);
  a.flat_grads().copy_from(gt);
  oa.step();
  oa.step();
  // b takes a's parameters and state, then both step once more.
  b.flat_values().copy_from(a.flat_values());
  ob.load_state(oa.steps_taken(), oa.exp_avg().to(Device::cpu), oa.exp_avg_sq().to(Device::cpu));
  EXPECT_EQ(ob.steps_taken(), 2);
  b.flat_grads().copy_from(gt);
  oa.step();
  ob.step();
  EXPECT_EQ(a.flat_values().to_vector<float>(), b.flat_values().to_vector<float>());
  EXPECT_THROW(ob.load_state(1, Tensor::zeros({3}, DType::f32), oa.exp_avg_sq()), Error);
}

// ZeRO-1: optimizers owning disjoint ranges (cutting parameters and parameter groups) update
// exactly the elements the full optimizer updates, with the same bits, and keep state only for
// their elements.
TEST_P(AdamWTest, OwnedRangesUpdateTheirShareBitwise) {
  const Device d = GetParam();
  ParamSet full, s0, s1;
  build(full, d);
  build(s0, d);
  build(s1, d);
  AdamWConfig cfg;
  cfg.weight_decay = 0.05;
  const std::int64_t n = full.numel();  // 46: the cut at 17 splits pkm.values (elements 15 … 28)
  AdamW of(full, cfg), o0(s0, cfg, {{0, 9}, {17, 30}}), o1(s1, cfg, {{9, 17}, {30, n + 2}});
  EXPECT_EQ(o0.state_numel(), 9 + 13);
  EXPECT_EQ(o1.state_numel(), 8 + (n - 30));  // the padding past the parameters is ignored
  for (int t = 0; t < 3; ++t) {
    std::vector<float> g(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.7f * static_cast<float>(i) + static_cast<float>(t));
    const Tensor gt = Tensor::from_vector(g, {n}, Device::cpu);
    for (ParamSet* ps : {&full, &s0, &s1}) ps->flat_grads().copy_from(gt);
    of.step(0.5);
    o0.step(0.5);
    o1.step(0.5);
  }
  const auto want = full.flat_values().to_vector<float>(), a = s0.flat_values().to_vector<float>(),
             b = s1.flat_values().to_vector<float>(), init = [&] {
               ParamSet fresh;
               build(fresh, Device::cpu);
               return fresh.flat_values().to_vector<float>();
             }();
  for (std::int64_t i = 0; i < n; ++i) {
    const bool mine0 = i < 9 || (i >= 17 && i < 30);
    const auto u = static_cast<std::size_t>(i);
    EXPECT_EQ(mine0 ? a[u] : b[u], want[u]) << i;
    EXPECT_EQ(mine0 ? b[u] : a[u], init[u]) << "element " << i << " was updated by the optimizer that does not own it";
  }
  const auto m = of.exp_avg().to_vector<float>(), m0 = o0.exp_avg().to_vector<float>();
  for (std::int64_t i = 0; i < 9; ++i) EXPECT_EQ(m0[static_cast<std::size_t>(i)], m[static_cast<std::size_t>(i)]);
  for (std::int64_t i = 17; i < 30; ++i) EXPECT_EQ(m0[static_cast<std::size_t>(i - 17 + 9)], m[static_cast<std::size_t>(i)]);
  const auto pc = o0.pieces(10, 20);  // flat 10 … 19: only 17 … 19 is o0's, at state offset 9
  ASSERT_EQ(pc.size(), 1u);
  EXPECT_EQ(pc[0].begin, 17);
  EXPECT_EQ(pc[0].end, 20);
  EXPECT_EQ(pc[0].state_offset, 9);
  EXPECT_THROW(AdamW(full, cfg, {{10, 20}, {5, 8}}), Error);  // not ascending
}

TEST_P(AdamWTest, RejectsBadSettings) {
  ParamSet ps;
  build(ps, GetParam());
  AdamWConfig c;
  c.lr = 0;
  EXPECT_THROW(AdamW(ps, c), Error);
  c = AdamWConfig{};
  c.beta2 = 1.0;
  EXPECT_THROW(AdamW(ps, c), Error);
  c = AdamWConfig{};
  c.eps = 0;
  EXPECT_THROW(AdamW(ps, c), Error);
  c = AdamWConfig{};
  c.weight_decay = -1;
  EXPECT_THROW(AdamW(ps, c), Error);
  ParamSet unfinished;
  unfinished.add("w", {2}, Init::Zeros());
  EXPECT_THROW(AdamW(unfinished, AdamWConfig{}), Error);
  AdamW ok(ps, AdamWConfig{});
  EXPECT_THROW(ok.step(-1.0), Error);
}

INSTANTIATE_TEST_SUITE_P(Trainer, AdamWTest, ::testing::Values(Device::cpu, Device::cuda),
                         [](const auto& info) { return std::string(device_name(info.param)); });

}  // namespace
}  // namespace sk
