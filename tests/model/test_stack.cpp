// The layer stack: reversible vs sequential gradients on the same weights, rebuilt-input drift of a
// deep reversible stack, weight tying (one parameter, aliases, gradient = sum over uses), layer
// dropout determinism, reversible recompute under every dropout, and parameter naming.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "model/layers/stack.h"
#include "model/lm/sinkhorn_transformer.h"
#include "model_test_util.h"

namespace sk {
namespace {

LMConfig stack_cfg(bool causal, bool reversible) {
  LMConfig c = test::tiny_lm(causal);
  c.reversible = reversible;
  c.depth = 3;
  c.n_local_attn_heads = 1;
  return c;
}

struct StackRun {
  Tensor y, dx, grads;
};

// Runs a LayerStack built from `cfg` (with keep_activations as given) on the flat parameter values,
// under the Context `c` (mode, seed, step: the keys of every random draw).
StackRun run_stack_in(const LMConfig& cfg, bool keep, const Tensor& flat, const Tensor& x, const Tensor& dy,
                      const Context& c) {
  ParamSet ps;
  StackConfig sc = stack_config(cfg);
  sc.keep_activations = keep;
  LayerStack stack(sc, ps, "", 99);
  ps.finalize(Device::cpu, 3);
  ps.flat_values().copy_from(flat);
  StackStash st;
  StackRun r;
  r.y = stack.forward(x, st, c);
  r.dx = stack.backward(dy, st, c);
  r.grads = ps.flat_grads().clone();
  return r;
}

StackRun run_stack(const LMConfig& cfg, bool keep, const Tensor& flat, const Tensor& x, const Tensor& dy,
                   const Tensor& mask) {
  Context c = test::cpu_context();
  c.input_mask = mask;
  return run_stack_in(cfg, keep, flat, x, dy, c);
}

// Blocks of a stack built from `cfg` that run under `c` (layer dropout).
std::vector<std::int64_t> active_blocks_of(const LMConfig& cfg, const Context& c) {
  ParamSet ps;
  LayerStack stack(stack_config(cfg), ps, "", 99);
  return stack.active_blocks(c);
}

Tensor random_flat(const LMConfig& cfg, std::uint64_t seed) {
  ParamSet ps;
  SinkhornTransformer tr(cfg, ps);
  ps.finalize(Device::cpu, 3);
  test::randomize(ps, seed);
  return ps.flat_values().clone();
}

// The reversible stack rebuilds every block's inputs from its outputs in backward; its gradients
// must equal ordinary backpropagation of the same two-stream computation on the same weights.
class ReversibleVsPlainBackprop : public ::testing::TestWithParam<bool> {};

TEST_P(ReversibleVsPlainBackprop, SameOutputsAndGradients) {
  const bool causal = GetParam();
  LMConfig rev = stack_cfg(causal, true);
  rev.ff_chunks = 2;
  Tensor flat = random_flat(rev, 17);
  Tensor x = test::randn({2, 32, 16}, 1), dy = test::randn({2, 32, 16}, 2);
  Tensor mask = test::right_pad_mask(2, 32, {32, 27});
  StackRun plain = run_stack(rev, true, flat, x, dy, mask);
  StackRun rebuilt = run_stack(rev, false, flat, x, dy, mask);
  EXPECT_EQ(test::max_abs_diff(rebuilt.y, plain.y), 0.0);
  EXPECT_LT(test::rel_err(rebuilt.dx, plain.dx), 1e-5);
  EXPECT_LT(test::rel_err(rebuilt.grads, plain.grads), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(CausalAndNot, ReversibleVsPlainBackprop, ::testing::Bool());

// Training mode with every dropout of the stack: the reversible backward re-runs each block's
// forward from the rebuilt inputs, which must redraw exactly the forward's masks (same Context
// keys), so its gradients equal plain backpropagation through the kept activations.
class ReversibleDropoutVsPlainBackprop : public ::testing::TestWithParam<bool> {};

TEST_P(ReversibleDropoutVsPlainBackprop, SameGradientsWithDropout) {
  const bool causal = GetParam();
  LMConfig rev = stack_cfg(causal, true);
  rev.ff_chunks = 2;
  rev.ff_dropout = 0.3;
  rev.attn_dropout = 0.2;
  rev.attn_layer_dropout = 0.25;
  Tensor flat = random_flat(rev, 31);
  Tensor x = test::randn({2, 32, 16}, 3), dy = test::randn({2, 32, 16}, 4);
  Context c = test::cpu_context(true, 321);
  c.step = 5;
  c.micro = 1;
  c.input_mask = test::right_pad_mask(2, 32, {32, 27});
  StackRun plain = run_stack_in(rev, true, flat, x, dy, c);
  StackRun rebuilt = run_stack_in(rev, false, flat, x, dy, c);
  EXPECT_EQ(test::max_abs_diff(rebuilt.y, plain.y), 0.0);
  EXPECT_LT(test::rel_err(rebuilt.dx, plain.dx), 1e-5);
  EXPECT_LT(test::rel_err(rebuilt.grads, plain.grads), 1e-5);
  // The dropouts are really on: eval mode (no masks) and another step (other masks) differ.
  Context ce = c;
  ce.training = false;
  Context c2 = c;
  c2.step = 6;
  EXPECT_GT(test::max_abs_diff(run_stack_in(rev, true, flat, x, dy, ce).y, plain.y), 1e-3);
  EXPECT_GT(test::max_abs_diff(run_stack_in(rev, true, flat, x, dy, c2).y, plain.y), 1e-3);
}

TEST_P(ReversibleDropoutVsPlainBackprop, SameGradientsWithLayerDropout) {
  const bool causal = GetParam();
  LMConfig rev = stack_cfg(causal, true);
  rev.depth = 4;
  rev.layer_dropout = 0.5;
  rev.ff_dropout = 0.1;
  rev.attn_dropout = 0.1;
  rev.attn_layer_dropout = 0.1;
  Tensor flat = random_flat(rev, 37);
  Tensor x = test::randn({2, 32, 16}, 5), dy = test::randn({2, 32, 16}, 6);
  Context c = test::cpu_context(true, 99);
  c.input_mask = test::right_pad_mask(2, 32, {30, 32});
  // A step on which some, but not all, blocks are dropped.
  std::vector<std::int64_t> act;
  for (c.step = 0; c.step < 64; ++c.step) {
    act = active_blocks_of(rev, c);
    if (!act.empty() && act.size() < 4u) break;
  }
  ASSERT_LT(c.step, 64u) << "no step drops a strict subset of the blocks";
  StackRun plain = run_stack_in(rev, true, flat, x, dy, c);
  StackRun rebuilt = run_stack_in(rev, false, flat, x, dy, c);
  EXPECT_EQ(test::max_abs_diff(rebuilt.y, plain.y), 0.0);
  EXPECT_LT(test::rel_err(rebuilt.dx, plain.dx), 1e-5);
  EXPECT_LT(test::rel_err(rebuilt.grads, plain.grads), 1e-5);
  // Dropped blocks get no gradient, kept blocks do (both paths).
  ParamSet ps;
  LayerStack stack(stack_config(rev), ps, "", 99);
  ps.finalize(Device::cpu, 3);
  ps.flat_grads().copy_from(rebuilt.grads);
  for (std::int64_t L = 0; L < 4; ++L) {
    const bool on = std::find(act.begin(), act.end(), L) != act.end();
    Parameter* p = ps.find("layers.blocks." + std::to_string(L) + ".f.net.fn.to_q.weight");
    ASSERT_NE(p, nullptr) << L;
    double n = 0;
    for (float v : p->grad.to_vector<float>()) n += std::abs(v);
    EXPECT_EQ(n > 0, on) << "block " << L;
  }
}

INSTANTIATE_TEST_SUITE_P(CausalAndNot, ReversibleDropoutVsPlainBackprop, ::testing::Bool());

// Sequential and reversible stacks register the same parameters in the same order (only the paths
// differ). With one block the two formulations are related exactly:
//   sequential  y = x + f(x) + g(x + f(x))
//   reversible  y = (x + f(x)) + (x + g(x + f(x))) = sequential + x
// so on the same weights the parameter gradients are equal and dx_rev = dx_seq + dy.
TEST(ReversibleVsSequential, OneBlockSameWeightsSameGradients) {
  for (bool causal : {true, false}) {
    LMConfig seq = stack_cfg(causal, false), rev = stack_cfg(causal, true);
    seq.depth = rev.depth = 1;
    {
      ParamSet a, b;
      SinkhornTransformer ts(seq, a), tr(rev, b);
      ASSERT_EQ(a.params().size(), b.params().size());
      for (std::size_t i = 0; i < a.params().size(); ++i) {
        EXPECT_EQ(a.params()[i]->shape, b.params()[i]->shape);
        const std::string n = a.params()[i]->name();  // layers.layers.0.{0,1}.rest
        const std::string side = n.substr(16, 1) == "0" ? "f" : "g";
        EXPECT_EQ(b.params()[i]->name(), "layers.blocks.0." + side + ".net." + n.substr(18));
      }
    }
    Tensor flat = random_flat(seq, 23);
    Tensor x = test::randn({2, 32, 16}, 1), dy = test::randn({2, 32, 16}, 2);
    Tensor mask = test::right_pad_mask(2, 32, {32, 19});
    StackRun s = run_stack(seq, false, flat, x, dy, mask);
    StackRun r = run_stack(rev, false, flat, x, dy, mask);
    Backend& be = backend_for(Device::cpu);
    EXPECT_LT(test::rel_err(be.sub(r.y, x), s.y), 1e-5);
    EXPECT_LT(test::rel_err(be.sub(r.dx, dy), s.dx), 1e-5);
    EXPECT_LT(test::rel_err(r.grads, s.grads), 1e-5);
  }
}

TEST(ReversibleStack, RebuiltInputsDriftLittleOnADeepStack) {
  LMConfig cfg = stack_cfg(true, true);
  cfg.depth = 24;
  ParamSet ps;
  SinkhornTransformer tr(cfg, ps);
  ps.finalize(Device::cpu, 5);
  Context c = test::cpu_context();
  Tensor x = test::randn({1, 32, 16}, 8);
  TransformerStash st;
  Tensor y = tr.forward(x, st, c);
  tr.backward(test::randn({1, 32, 16}, 9), st, c);
  ASSERT_TRUE(st.stack.rebuilt1.defined());
  const double scale = std::sqrt(double(x.numel()));
  // Relative reconstruction error of the inputs rebuilt through 48 residual functions.
  EXPECT_LT(test::rel_err(st.stack.rebuilt1, x), 1e-4) << "depth 24, |x| ~ " << scale;
  EXPECT_LT(test::rel_err(st.stack.rebuilt2, x), 1e-4);
}

TEST(ReversibleStack, KeepsNoPerBlockState) {
  LMConfig cfg = stack_cfg(false, true);
  ParamSet ps;
  SinkhornTransformer tr(cfg, ps);
  ps.finalize(Device::cpu, 5);
  Context c = test::cpu_context();
  TransformerStash st;
  tr.forward(test::randn({1, 32, 16}, 8), st, c);
  EXPECT_TRUE(st.stack.f.empty());
  EXPECT_TRUE(st.stack.g.empty());
  EXPECT_TRUE(st.stack.y1.defined());
}

TEST(WeightTie, OneParameterAliasesAndSummedGradients) {
  for (bool rev : {false, true}) {
    LMConfig tied = stack_cfg(true, rev);
    tied.weight_tie = true;
    LMConfig untied = stack_cfg(true, rev);
    ParamSet pt, pu;
    SinkhornTransformer tt(tied, pt), tu(untied, pu);
    pt.finalize(Device::cpu, 1);
    pu.finalize(Device::cpu, 1);
    test::randomize(pt, 4);
    // Copy the tied values into every untied block (by name, aliases included).
    for (const auto& p : pt.params())
      for (const auto& nm : p->names) {
        Parameter* q = pu.find(nm);
        ASSERT_NE(q, nullptr) << nm;
        q->value.copy_from(p->value);
      }
    // One parameter per shared tensor: the attention / FF of block 0 carry depth names.
    const std::string f0 = rev ? "layers.blocks.0.f.net.fn.to_q.weight" : "layers.layers.0.0.fn.to_q.weight";
    const std::string f2 = rev ? "layers.blocks.2.f.net.fn.to_q.weight" : "layers.layers.2.0.fn.to_q.weight";
    const std::string n1 = rev ? "layers.blocks.1.f.net.norm.weight" : "layers.layers.1.0.norm.weight";
    const std::string n0 = rev ? "layers.blocks.0.f.net.norm.weight" : "layers.layers.0.0.norm.weight";
    ASSERT_EQ(pt.find(f0), pt.find(f2));
    EXPECT_EQ(pt.find(f0)->names.size(), 3u);
    EXPECT_NE(pt.find(n0), pt.find(n1));  // wrappers are never shared
    Context c = test::cpu_context();
    Tensor x = test::randn({2, 32, 16}, 1), dy = test::randn({2, 32, 16}, 2);
    TransformerStash s1, s2;
    Tensor yt = tt.forward(x, s1, c), yu = tu.forward(x, s2, c);
    EXPECT_LT(test::rel_err(yt, yu), 1e-6);
    tt.backward(dy, s1, c);
    tu.backward(dy, s2, c);
    Backend& be = c.backend();
    for (const auto& p : pt.params()) {
      Tensor sum = Tensor::zeros(p->shape, DType::f32);
      for (const auto& nm : p->names) sum = be.add(sum, pu.find(nm)->grad);
      EXPECT_LT(test::rel_err(p->grad, sum), 1e-5) << p->name();
    }
  }
}

TEST(LayerDropout, DeterministicPerKeyAndKeepsAtLeastOne) {
  LMConfig cfg = stack_cfg(true, false);
  cfg.depth = 6;
  cfg.layer_dropout = 0.5;
  ParamSet ps;
  SinkhornTransformer tr(cfg, ps);
  ps.finalize(Device::cpu, 1);
  Context c = test::cpu_context(true, 123);
  std::set<std::vector<std::int64_t>> seen;
  for (std::uint64_t step = 0; step < 40; ++step) {
    c.step = step;
    auto a = tr.stack().active_blocks(c);
    EXPECT_EQ(a, tr.stack().active_blocks(c)) << "same key, same blocks";
    EXPECT_FALSE(a.empty());
    EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
    seen.insert(a);
  }
  EXPECT_GT(seen.size(), 5u) << "the decision should vary with the step";
  // Eval mode and p = 1 - tiny: every block / the first block.
  EXPECT_EQ(tr.stack().active_blocks(test::cpu_context(false)).size(), 6u);
  LMConfig all = cfg;
  all.layer_dropout = 0.999999;
  ParamSet ps2;
  SinkhornTransformer tr2(all, ps2);
  ps2.finalize(Device::cpu, 1);
  for (std::uint64_t step = 0; step < 10; ++step) {
    c.step = step;
    auto a = tr2.stack().active_blocks(c);
    EXPECT_FALSE(a.empty());
  }
  // Forward / backward with dropped blocks: the dropped blocks' parameters get no gradient.
  c.step = 3;
  auto act = tr.stack().active_blocks(c);
  TransformerStash st;
  Tensor x = test::randn({1, 32, 16}, 1);
  tr.forward(x, st, c);
  tr.backward(test::randn({1, 32, 16}, 2), st, c);
  for (std::int64_t L = 0; L < 6; ++L) {
    const bool on = std::find(act.begin(), act.end(), L) != act.end();
    Parameter* p = ps.find("layers.layers." + std::to_string(L) + ".0.fn.to_q.weight");
    ASSERT_NE(p, nullptr);
    double n = 0;
    for (float v : p->grad.to_vector<float>()) n += std::abs(v);
    EXPECT_EQ(n > 0, on) << "block " << L;
  }
}

TEST(Stack, ParameterNames) {
  LMConfig cfg = stack_cfg(true, false);
  cfg.receives_context = true;
  cfg.pkm_layers = {2};
  cfg.use_rezero = true;
  ParamSet ps;
  SinkhornTransformer tr(cfg, ps, "st.");
  EXPECT_NE(ps.find("st.layers.layers.0.0.g"), nullptr);
  EXPECT_NE(ps.find("st.layers.layers.0.1.fn.fn.w1.weight"), nullptr);   // chunked self FF
  EXPECT_NE(ps.find("st.layers.layers.1.0.fn.to_q.weight"), nullptr);    // context attention
  EXPECT_EQ(ps.find("st.layers.layers.1.0.fn.to_kv.weight"), nullptr);
  EXPECT_NE(ps.find("st.layers.layers.1.1.fn.w1.weight"), nullptr);      // context FF (no chunk)
  EXPECT_NE(ps.find("st.layers.layers.2.1.fn.keys"), nullptr);           // PKM at layer 2 -> block 2
  EXPECT_NE(ps.find_buffer("st.layers.layers.2.1.fn.norm.fn.running_mean"), nullptr);
  EXPECT_EQ(tr.stack().num_blocks(), 6);
}

}  // namespace
}  // namespace sk
