// FeedForward: chunking is numerically invisible (forward and every gradient), GLU included, and
// the chunk lengths follow torch.chunk.
#include <gtest/gtest.h>

#include "model/layers/feedforward.h"
#include "model_test_util.h"

namespace sk {
namespace {

struct FFRun {
  Tensor y, dx, grads;
};

FFRun run_ff(bool glu, std::int64_t chunks, std::int64_t T) {
  ParamSet ps;
  FeedForwardConfig cfg{12, glu, 0.f, chunks};
  FeedForward ff(cfg, ps, "ff.", 7);
  ps.finalize(Device::cpu, 42);  // same registration order -> same initial values for any chunking
  Context c = test::cpu_context();
  Tensor x = test::randn({3, T, 12}, 5);
  Tensor dy = test::randn({3, T, 12}, 6);
  Stash s;
  FFRun r;
  r.y = ff.forward(x, s, c);
  r.dx = ff.backward(dy, s, c);
  r.grads = ps.flat_grads().clone();
  return r;
}

TEST(FeedForward, ChunkLengthsFollowTorchChunk) {
  EXPECT_EQ(FeedForward::chunk_len(10, 1), 10);
  EXPECT_EQ(FeedForward::chunk_len(10, 3), 4);   // 4, 4, 2
  EXPECT_EQ(FeedForward::chunk_len(10, 4), 3);   // 3, 3, 3, 1
  EXPECT_EQ(FeedForward::chunk_len(10, 20), 1);  // more chunks than positions
}

class FeedForwardChunks : public ::testing::TestWithParam<std::tuple<bool, std::int64_t>> {};

TEST_P(FeedForwardChunks, ChunkedEqualsUnchunked) {
  const auto [glu, chunks] = GetParam();
  const std::int64_t T = 10;
  FFRun a = run_ff(glu, 1, T);
  FFRun b = run_ff(glu, chunks, T);
  EXPECT_LT(test::max_abs_diff(a.y, b.y), 1e-6);
  EXPECT_LT(test::max_abs_diff(a.dx, b.dx), 1e-6);
  EXPECT_LT(test::rel_err(b.grads, a.grads), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(All, FeedForwardChunks,
                         ::testing::Combine(::testing::Bool(), ::testing::Values<std::int64_t>(2, 3, 4, 7, 10, 16)));

TEST(FeedForward, ParameterNamesAndShapes) {
  ParamSet ps;
  FeedForward ff(FeedForwardConfig{8, true, 0.f, 1}, ps, "p.fn.fn.", 1);
  ASSERT_NE(ps.find("p.fn.fn.w1.weight"), nullptr);
  EXPECT_EQ(ps.find("p.fn.fn.w1.weight")->shape, (Shape{64, 8}));  // 8D with GLU
  EXPECT_EQ(ps.find("p.fn.fn.w1.bias")->shape, (Shape{64}));
  EXPECT_EQ(ps.find("p.fn.fn.w2.weight")->shape, (Shape{8, 32}));
  EXPECT_EQ(ps.find("p.fn.fn.w2.bias")->shape, (Shape{8}));
}

TEST(FeedForward, DropoutIsRedrawnInBackwardAndChunkKeyed) {
  // With dropout in training mode, backward must reuse forward's masks: check against finite
  // differences of the (deterministic, keyed) forward.
  ParamSet ps;
  FeedForward ff(FeedForwardConfig{6, false, 0.3f, 2}, ps, "ff.", 3);
  ps.finalize(Device::cpu, 1);
  Context c = test::cpu_context(/*training=*/true, 9);
  Tensor x = test::randn({2, 5, 6}, 2);
  Tensor w = test::randn({2, 5, 6}, 3);
  Backend& be = c.backend();
  Stash s;
  ff.forward(x, s, c);
  Tensor dx = ff.backward(w, s, c);
  auto loss = [&](const Tensor& xx) {
    Stash s2;
    Tensor y = ff.forward(xx, s2, c);
    auto yv = be.mul(y, w).to_vector<float>();
    double t = 0;
    for (float v : yv) t += v;
    return t;
  };
  std::vector<float> xv = x.to_vector<float>(), dxv = dx.to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); i += 7) {
    auto xp = xv, xm = xv;
    xp[i] += 1e-2f;
    xm[i] -= 1e-2f;
    double fd = (loss(Tensor::from_vector(xp, x.shape())) - loss(Tensor::from_vector(xm, x.shape()))) / 2e-2;
    EXPECT_NEAR(fd, dxv[i], 2e-2 * std::max(1.0, std::abs(fd))) << "element " << i;
  }
}

}  // namespace
}  // namespace sk

namespace sk {
namespace {

// Chunked forward keeps no hidden activation (only the caller's input): the memory a chunked FF
// holds between forward and backward does not grow with the hidden width; unchunked keeps both.
TEST(FeedForward, ChunkedForwardRetainsNoHiddenActivations) {
  for (std::int64_t chunks : {1, 4}) {
    ParamSet ps;
    FeedForward ff(FeedForwardConfig{16, false, 0.f, chunks}, ps, "ff.", 1);
    ps.finalize(Device::cpu, 1);
    Context c = test::cpu_context();
    Backend& be = c.backend();
    Tensor x = test::randn({2, 64, 16}, 1);
    Stash s;
    const std::size_t before = be.bytes_in_use();
    Tensor y = ff.forward(x, s, c);
    const std::size_t retained = be.bytes_in_use() - before - y.nbytes();
    const auto& st = s.get<FeedForwardStash>();
    if (chunks == 1) {
      EXPECT_TRUE(st.pre.defined() && st.h.defined());
      EXPECT_GE(retained, 2 * x.nbytes() * 4);  // pre and h, each 4× the input
    } else {
      EXPECT_FALSE(st.pre.defined() || st.h.defined());
      EXPECT_EQ(retained, 0u);
    }
    ff.backward(test::randn({2, 64, 16}, 2), s, c);
  }
}

}  // namespace
}  // namespace sk
