// test_misc.cpp — fill (every dtype), cast (f32 <-> bf16 round-to-nearest-even, ints -> f32,
// f32 -> i64), AdamW over several steps vs a float64 update, host memory accounting, and the error
// contract: a bad shape/dtype throws sk::Error whose message names the op.
#include <cfloat>
#include <cstring>
#include <limits>

#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

TEST_P(Ops, FillEveryDtype) {
  const std::int64_t n = 70001;  // the parallel path on CPU
  Tensor f = Tensor::empty({n}, DType::f32, dev());
  be().fill(f, -3.25f);
  for (float v : F(f)) ASSERT_EQ(v, -3.25f);
  Tensor h = Tensor::empty({3, 5}, DType::bf16, dev());
  be().fill(h, 1.00390625f);  // 1 + 2^-8: a tie between bf16 1.0 and 1.0078125 -> even (1.0)
  for (auto v : h.to_vector<std::uint16_t>()) ASSERT_EQ(v, 0x3f80u);
  Tensor i32 = Tensor::empty({7}, DType::i32, dev());
  be().fill(i32, 42.f);
  for (auto v : i32.to_vector<std::int32_t>()) ASSERT_EQ(v, 42);
  Tensor i64 = Tensor::empty({n}, DType::i64, dev());
  be().fill(i64, -100.f);
  for (auto v : i64.to_vector<std::int64_t>()) ASSERT_EQ(v, -100);
  Tensor u8 = Tensor::empty({5, 3}, DType::u8, dev());
  be().fill(u8, 1.f);
  for (auto v : u8.to_vector<std::uint8_t>()) ASSERT_EQ(v, 1);
  Tensor z = Tensor::zeros({0, 3}, DType::f32, dev());  // empty tensors are fine
  EXPECT_EQ(z.numel(), 0);
}

TEST_P(Ops, CastF32ToBf16RoundsToNearestEven) {
  std::vector<float> x = randn(50001, 10.f);
  // Special and boundary values.
  const float ulp_half = std::ldexp(1.f, -8);  // half a bf16 ulp at 1.0
  for (float v : {0.f, -0.f, 1.f, -1.f, 1.f + ulp_half, 1.f + 3 * ulp_half, -(1.f + ulp_half), 1.f + 1.5f * ulp_half,
                  FLT_MAX, -FLT_MAX, 3.3895314e38f, FLT_MIN, 1e-40f, -1e-41f, 65504.f, 1e30f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    x.push_back(v);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  Tensor h = be().cast(T(x, {static_cast<std::int64_t>(x.size())}), DType::bf16);
  EXPECT_EQ(h.dtype(), DType::bf16);
  auto bits = h.to_vector<std::uint16_t>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    double got = bf16_to_f32(bits[i]);
    double want = skref::bf16_round(x[i]);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << "NaN must stay NaN";
      continue;
    }
    ASSERT_EQ(got, want) << "x = " << x[i] << " (index " << i << ")";
    ASSERT_EQ(std::signbit(got), std::signbit(want)) << "sign of " << x[i];
  }
}

TEST_P(Ops, CastBf16AndIntsToF32) {
  // bf16 -> f32 is exact: every bit pattern except NaNs maps to its value.
  std::vector<std::uint16_t> all;
  for (std::uint32_t b = 0; b < 65536; ++b)
    if ((b & 0x7f80u) != 0x7f80u || (b & 0x7fu) == 0) all.push_back(static_cast<std::uint16_t>(b));
  Tensor f = be().cast(Tensor::from_vector(all, {static_cast<std::int64_t>(all.size())}, dev()), DType::f32);
  auto fv = F(f);
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::uint32_t u = static_cast<std::uint32_t>(all[i]) << 16;
    float want;
    std::memcpy(&want, &u, 4);
    ASSERT_EQ(std::memcmp(&fv[i], &want, 4), 0) << "bits " << std::hex << all[i];
  }
  std::vector<std::int64_t> i64 = {0, -1, 5, 1 << 20, -123456789, (1ll << 40) + 1};
  auto c64 = F(be().cast(Tensor::from_vector(i64, {6}, dev()), DType::f32));
  for (std::size_t i = 0; i < i64.size(); ++i) EXPECT_EQ(c64[i], static_cast<float>(i64[i]));
  std::vector<std::int32_t> i32 = {0, -7, 2147483647, 99};
  auto c32 = F(be().cast(Tensor::from_vector(i32, {2, 2}, dev()), DType::f32));
  for (std::size_t i = 0; i < i32.size(); ++i) EXPECT_EQ(c32[i], static_cast<float>(i32[i]));
  std::vector<std::uint8_t> u8 = {0, 1, 255, 128, 7};
  auto c8 = F(be().cast(Tensor::from_vector(u8, {5}, dev()), DType::f32));
  for (std::size_t i = 0; i < u8.size(); ++i) EXPECT_EQ(c8[i], static_cast<float>(u8[i]));
}

TEST_P(Ops, CastF32ToI64TruncatesAndSameDtypeCopies) {
  std::vector<float> x = {0.f, 2.9f, -2.9f, 1e9f, -0.5f, 65535.f, 3.f};
  auto y = be().cast(T(x, {7}), DType::i64).to_vector<std::int64_t>();
  EXPECT_EQ(y, (std::vector<std::int64_t>{0, 2, -2, 1000000000, 0, 65535, 3}));
  auto r = randn(33);
  Tensor c = be().cast(T(r, {3, 11}), DType::f32);
  EXPECT_EQ(F(c), r);
  std::vector<std::uint16_t> h = {0x3f80, 0xc000, 0x7f80};
  EXPECT_EQ(be().cast(Tensor::from_vector(h, {3}, dev()), DType::bf16).to_vector<std::uint16_t>(), h);
  // Round trip f32 -> bf16 -> f32 is within half a bf16 ulp (2^-9 relative).
  auto big = randn(5000, 100.f);
  auto back = F(be().cast(be().cast(T(big, {5000}), DType::bf16), DType::f32));
  EXPECT_TRUE(close(D(back), D(big), 1.0 / 256, 0));
}

TEST_P(Ops, AdamWMatchesFloat64OverSteps) {
  const std::int64_t n = 40003;
  auto p0 = randn(n), m0 = std::vector<float>(static_cast<std::size_t>(n), 0.f), v0 = m0;
  Tensor p = T(p0, {n}), m = T(m0, {n}), v = T(v0, {n});
  Vec rp = D(p0), rm(static_cast<std::size_t>(n), 0.0), rv(static_cast<std::size_t>(n), 0.0);
  const float lr = 3e-3f, b1 = 0.9f, b2 = 0.98f, eps = 1e-8f, wd = 0.1f;
  for (std::int64_t step = 1; step <= 6; ++step) {
    auto g = randn(n, 0.5f);
    for (std::size_t i = 0; i < 100; ++i) g[i] = 0.f;  // zero grads: only decay moves these
    be().adamw_update(p, T(g, {n}), m, v, lr, b1, b2, eps, wd, step);
    skref::adamw(rp, D(g), rm, rv, lr, b1, b2, eps, wd, step);
  }
  // f32 state after a few steps: errors of a few ulps relative to each value.
  EXPECT_TRUE(close(D(m), rm, 1e-5, 1e-7)) << "m";
  EXPECT_TRUE(close(D(v), rv, 1e-5, 1e-9)) << "v";
  EXPECT_TRUE(close(D(p), rp, 1e-5, 1e-6)) << "param";
  // The step moved the parameters (a no-op update would pass the m/v checks only).
  double moved = 0;
  auto pv = F(p);
  for (std::size_t i = 0; i < pv.size(); ++i) moved += std::fabs(pv[i] - p0[i]);
  EXPECT_GT(moved / static_cast<double>(n), 1e-3);
}

TEST_P(Ops, HostMemoryAccounting) {
  if (dev() != Device::cpu) GTEST_SKIP() << "host allocator accounting (CUDA's caching allocator is tested in tests/gpu)";
  std::size_t before = be().bytes_in_use();
  {
    Tensor t = Tensor::empty({1000, 250}, DType::f32, dev());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw()) % 64, 0u) << "64-byte alignment";
    EXPECT_GE(be().bytes_in_use(), before + 1000000);
    EXPECT_GE(be().peak_bytes(), be().bytes_in_use());
    Tensor odd = Tensor::empty({3}, DType::u8, dev());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(odd.raw()) % 64, 0u);
  }
  EXPECT_EQ(be().bytes_in_use(), before);
}

// ---- errors ------------------------------------------------------------------------------------
TEST_P(Ops, BadArgumentsThrowErrorsNamingTheOp) {
  Backend& b = be();
  Tensor x23 = T(randn(6), {2, 3}), x32 = T(randn(6), {3, 2}), x34 = T(randn(12), {3, 4});
  Tensor ids = I({0, 1}, {2});
  Tensor m23 = M({1, 1, 1, 0, 0, 0}, {2, 3});
  Tensor f1 = T({1.f}, {1});

  Tensor c = Tensor::empty({2, 4}, DType::f32, dev());
  EXPECT_SK_ERROR(b.gemm(c, x23, x23, false, false), "gemm");               // inner dims 3 vs 2
  EXPECT_SK_ERROR(b.gemm(c, x23, b.cast(x34, DType::bf16), false, false), "gemm");  // mixed dtypes
  EXPECT_SK_ERROR(b.matmul(x23, x23), "gemm");
  EXPECT_SK_ERROR(b.matmul(f1, x23), "matmul");                              // rank 1
  EXPECT_SK_ERROR(b.add(x23, x32), "add");                                   // do not broadcast
  EXPECT_SK_ERROR(b.mul(x23, ids), "mul");                                   // i64 operand
  EXPECT_SK_ERROR(b.binary_backward(x32, x23, x23, BinaryOp::sub), "binary_backward");
  EXPECT_SK_ERROR(b.unary(ids, UnaryOp::exp), "exp");
  EXPECT_SK_ERROR(b.unary_backward(x32, x23, x23, UnaryOp::tanh), "unary_backward");
  EXPECT_SK_ERROR(b.axpy(x23, x34), "axpy");
  EXPECT_SK_ERROR(b.where(m23, x23, x32), "where");
  EXPECT_SK_ERROR(b.masked_fill(x34, m23, 0.f), "masked_fill");
  EXPECT_SK_ERROR(b.sum_to(x23, {4}), "sum_to");
  EXPECT_SK_ERROR(b.reduce(x23, 2, ReduceOp::sum), "sum");
  EXPECT_SK_ERROR(b.reduce(x23, -3, ReduceOp::max), "max");
  EXPECT_SK_ERROR(b.reduce_backward(x23, x23, x23, 1, ReduceOp::mean), "reduce_backward");
  EXPECT_SK_ERROR(b.logsumexp(x23, 5), "logsumexp");
  EXPECT_SK_ERROR(b.logsumexp_backward(x23, x23, x23, 0), "logsumexp_backward");
  EXPECT_SK_ERROR(b.cumsum(ids, 0), "cumsum");
  EXPECT_SK_ERROR(b.softmax(x23, M({1, 1, 1}, {3})), "softmax");
  EXPECT_SK_ERROR(b.softmax(x23, x23), "softmax");                           // f32 mask
  EXPECT_SK_ERROR(b.softmax_backward(x23, x32), "softmax_backward");
  EXPECT_SK_ERROR(b.log_softmax(ids), "log_softmax");
  EXPECT_SK_ERROR(b.log_softmax_backward(x23, x34), "log_softmax_backward");
  EXPECT_SK_ERROR(b.cross_entropy(x23, I({0, 1, 2}, {3}), -1), "cross_entropy");
  EXPECT_SK_ERROR(b.cross_entropy(x23, T({0.f, 1.f}, {2}), -1), "cross_entropy");
  EXPECT_SK_ERROR(b.layernorm(x23, T(randn(2), {2}), {}), "layernorm");
  EXPECT_SK_ERROR(b.layernorm(x23, {}, T(randn(4), {4})), "layernorm");
  {
    LayerNormOut o = b.layernorm(x23, {}, {});
    Tensor dw = T(randn(2), {2}), none;
    EXPECT_SK_ERROR(b.layernorm_backward(x23, x23, {}, o, dw, none), "layernorm_backward");
  }
  EXPECT_SK_ERROR(b.embedding(T(randn(8), {2, 2, 2}), ids), "embedding");
  EXPECT_SK_ERROR(b.embedding(x23, T({0.f, 1.f}, {2})), "embedding");
  {
    Tensor dt = T(randn(6), {2, 3});
    EXPECT_SK_ERROR(b.embedding_backward(dt, x34, ids), "embedding_backward");
  }
  EXPECT_SK_ERROR(b.permute(x23, {0, 0}), "permute");
  EXPECT_SK_ERROR(b.permute(x23, {1, 0, 2}), "permute");
  EXPECT_SK_ERROR(b.concat({x23, x34}, 1), "concat");
  EXPECT_SK_ERROR(b.concat({x23, ids}, 0), "concat");
  EXPECT_SK_ERROR(b.concat({}, 0), "concat");
  EXPECT_SK_ERROR(b.narrow(x23, 1, 2, 2), "narrow");
  {
    Tensor dst = T(randn(6), {2, 3});
    EXPECT_SK_ERROR(b.narrow_assign(dst, x34, 1, 0, false), "narrow_assign");
    EXPECT_SK_ERROR(b.narrow_assign(dst, T(randn(4), {2, 2}), 1, 2, true), "narrow_assign");
  }
  EXPECT_SK_ERROR(b.split(x23, 1, {1, 1}), "split");
  EXPECT_SK_ERROR(b.roll(x23, 3, 1), "roll");
  EXPECT_SK_ERROR(b.pad(x23, 1, -1, 0, 0.f), "pad");
  EXPECT_SK_ERROR(b.gather_rows(x23, I({0}, {1, 1})), "gather_rows");
  {
    Tensor dx = T(randn(6), {1, 2, 3});
    EXPECT_SK_ERROR(b.scatter_add_rows(dx, T(randn(6), {1, 2, 3}), I({0, 1, 1}, {1, 3})), "scatter_add_rows");
  }
  EXPECT_SK_ERROR(b.topk(x23, 4), "topk");
  EXPECT_SK_ERROR(b.argmax(T({}, {2, 0})), "argmax");
  EXPECT_SK_ERROR(b.dropout(x23, 1.f, {}), "dropout");
  EXPECT_SK_ERROR(b.dropout(x23, -0.1f, {}), "dropout");
  {
    Tensor p = T(randn(6), {6}), mm = T(randn(6), {6}), vv = T(randn(5), {5});
    EXPECT_SK_ERROR(b.adamw_update(p, T(randn(6), {6}), mm, vv, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.f, 1), "adamw_update");
    Tensor v6 = T(randn(6), {6});
    EXPECT_SK_ERROR(b.adamw_update(p, T(randn(6), {6}), mm, v6, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.f, 0), "adamw_update");
  }
  EXPECT_SK_ERROR(b.cast(ids, DType::u8), "cast");
  EXPECT_SK_ERROR(b.cast(b.cast(x23, DType::bf16), DType::i64), "cast");
  if (dev() == Device::cuda) {  // a host tensor handed to the CUDA backend
    EXPECT_SK_ERROR(b.softmax(Tensor::from_vector(randn(6), {2, 3})), "softmax");
    Tensor hc = Tensor::empty({2, 2}, DType::f32);
    EXPECT_SK_ERROR(b.gemm(hc, x23, x32, false, false), "gemm");
  }
}

TEST_P(Ops, OutOfRangeIndicesThrow) {
  if (dev() != Device::cpu)
    GTEST_SKIP() << "index values are range-checked on the CPU backend only (a device check would need a sync)";
  Backend& b = be();
  Tensor table = T(randn(12), {4, 3});
  EXPECT_SK_ERROR(b.embedding(table, I({0, 4}, {2})), "embedding");
  EXPECT_SK_ERROR(b.embedding(table, I({-1}, {1})), "embedding");
  Tensor dt = T(randn(12), {4, 3});
  EXPECT_SK_ERROR(b.embedding_backward(dt, T(randn(3), {1, 3}), I({9}, {1})), "embedding_backward");
  Tensor x = T(randn(12), {1, 4, 3});
  EXPECT_SK_ERROR(b.gather_rows(x, I({0, 4}, {1, 2})), "gather_rows");
  EXPECT_SK_ERROR(b.scatter_add_rows(x, T(randn(3), {1, 1, 3}), I({-2}, {1, 1})), "scatter_add_rows");
  EXPECT_SK_ERROR(b.cross_entropy(T(randn(6), {2, 3}), I({0, 3}, {2}), -100), "cross_entropy");
}

}  // namespace
}  // namespace sk::test
