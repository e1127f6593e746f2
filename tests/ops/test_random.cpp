// test_random.cpp — Philox4x32-10 known answers, rand_uniform and dropout streams (bitwise against
// the scalar definition, and CUDA against CPU), dropout values, mask statistics and backward.
#include <cstring>

#include "model/core/philox.h"
#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

// Random123's published known-answer vectors for philox4x32-10 (kat_vectors in its test suite).
TEST(Philox, KnownAnswerVectors) {
  struct Kat {
    std::uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const auto& k : kats) {
    Philox4 c{{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}};
    Philox4 r = philox4x32_10(c, k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i << " for ctr " << std::hex << k.ctr[0];
  }
}

TEST(Philox, CounterLayoutAndUniformRange) {
  // philox_block puts the element block in words 0-1 and the stream in words 2-3; the seed is the key.
  RngKey key{0x299f31d0a4093822ull, 0x0370734413198a2eull};  // seed = (k1 << 32) | k0
  Philox4 r = philox_block(key, 0x85a308d3243f6a88ull);
  EXPECT_EQ(r.v[0], 0xd16cfe09u);
  EXPECT_EQ(r.v[3], 0x24126ea1u);
  EXPECT_EQ(philox_uniform(0u), 0.f);
  EXPECT_LT(philox_uniform(0xffffffffu), 1.f);
  EXPECT_EQ(philox_uniform(0x80000000u), 0.5f);
  // element i uses word i % 4 of block i / 4
  RngKey k2{7, 9};
  Philox4 b1 = philox_block(k2, 1);
  EXPECT_EQ(philox_uniform_at(k2, 6), philox_uniform(b1.v[2]));
}

std::vector<float> scalar_uniform(RngKey key, std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = philox_uniform_at(key, static_cast<std::uint64_t>(i));
  return v;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_P(Ops, RandUniformIsThePhiloxStream) {
  const RngKey keys[] = {{0, 0}, {12345, rng_stream(3, 17, 2, 1)}, {~0ull, ~0ull}};
  for (const auto& key : keys)
    for (std::int64_t n : {1, 3, 4, 5, 1001, 1000003}) {
      Tensor u = be().rand_uniform({n}, key);
      EXPECT_TRUE(bitwise_equal(F(u), scalar_uniform(key, n))) << "n " << n << " seed " << key.seed;
    }
  Tensor u = be().rand_uniform({7, 3, 5}, keys[1]);
  EXPECT_EQ(u.shape(), (Shape{7, 3, 5}));
  EXPECT_TRUE(bitwise_equal(F(u), scalar_uniform(keys[1], 105)));
}

TEST_P(Ops, RandUniformStatistics) {
  const std::int64_t n = 1 << 20;
  auto u = F(be().rand_uniform({n}, {42, 1}));
  double s = 0, s2 = 0, lag = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    ASSERT_GE(u[i], 0.f);
    ASSERT_LT(u[i], 1.f);
    s += u[i];
    s2 += static_cast<double>(u[i]) * u[i];
    if (i) lag += (u[i] - 0.5) * (u[i - 1] - 0.5);
  }
  const double dn = static_cast<double>(n);
  // mean 1/2 (sd sqrt(1/12/n)), variance 1/12, lag-1 covariance 0 (sd (1/12)/sqrt(n)); 6 sigma bounds.
  EXPECT_NEAR(s / dn, 0.5, 6 * std::sqrt(1.0 / 12 / dn));
  EXPECT_NEAR(s2 / dn - (s / dn) * (s / dn), 1.0 / 12, 6 * std::sqrt(1.0 / 180 / dn));
  EXPECT_NEAR(lag / dn, 0.0, 6 * (1.0 / 12) / std::sqrt(dn));
  // Different streams / seeds give different numbers.
  auto u2 = F(be().rand_uniform({64}, {42, 2}));
  auto u3 = F(be().rand_uniform({64}, {43, 1}));
  int same2 = 0, same3 = 0;
  for (std::size_t i = 0; i < 64; ++i) same2 += u2[i] == u[i], same3 += u3[i] == u[i];
  EXPECT_LT(same2, 3);
  EXPECT_LT(same3, 3);
}

// CUDA must draw exactly the CPU's bits (reversible recompute and any-layout reproducibility rely on
// it). On the cpu instance the comparison is against the scalar definition instead.
TEST_P(Ops, RandomStreamsBitwiseAcrossDevices) {
  Backend& cpu = backend_for(Device::cpu);
  const RngKey key{0xdeadbeefcafef00dull, rng_stream(11, 5, 3, 2)};
  for (std::int64_t n : {1, 7, 4096 + 3, 999983}) {
    auto here = F(be().rand_uniform({n}, key));
    auto want = dev() == Device::cpu ? scalar_uniform(key, n) : F(cpu.rand_uniform({n}, key));
    EXPECT_TRUE(bitwise_equal(here, want)) << "rand_uniform n " << n;
    auto x = randn(n);
    for (float p : {0.1f, 0.5f, 0.93f}) {
      auto dy = F(be().dropout(T(x, {n}), p, key));
      std::vector<float> dw;
      if (dev() == Device::cpu) {
        const float scale = 1.0f / (1.0f - p);
        for (std::int64_t i = 0; i < n; ++i)
          dw.push_back(philox_uniform_at(key, static_cast<std::uint64_t>(i)) >= p ? x[static_cast<std::size_t>(i)] * scale
                                                                                  : 0.f);
      } else {
        dw = F(cpu.dropout(Tensor::from_vector(x, {n}), p, key));
      }
      EXPECT_TRUE(bitwise_equal(dy, dw)) << "dropout n " << n << " p " << p;
    }
  }
}

TEST_P(Ops, DropoutValues) {
  const Shape s{37, 129};
  auto x = randn(shape_numel(s));
  const RngKey key{99, rng_stream(1, 2, 3, 4)};
  for (float p : {0.f, 0.1f, 0.5f, 0.9f}) {
    Tensor y = be().dropout(T(x, s), p, key);
    EXPECT_EQ(y.shape(), s);
    EXPECT_TRUE(close(D(y), skref::dropout(D(x), p, key), 1e-6, 0)) << "p " << p;
  }
}

TEST_P(Ops, DropoutMaskStatistics) {
  const std::int64_t n = 1 << 20;
  Tensor ones = Tensor::full({n}, 1.f, dev());
  for (float p : {0.1f, 0.5f, 0.9f}) {
    auto y = F(be().dropout(ones, p, {2024, rng_stream(7, 0, 1, 0)}));
    auto y2 = F(be().dropout(ones, p, {2024, rng_stream(7, 1, 1, 0)}));  // another sample's stream
    const float scale = 1.0f / (1.0f - p);
    double kept = 0, both = 0, pairs = 0, sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(y[i] == 0.f || y[i] == scale) << "value " << y[i] << " at " << i;
      bool k = y[i] != 0.f;
      kept += k;
      both += k && y2[i] != 0.f;
      if (i) pairs += k && y[i - 1] != 0.f;
      sum += y[i];
    }
    const double q = 1.0 - p, dn = static_cast<double>(n);
    const double sd = std::sqrt(q * (1 - q) / dn);
    EXPECT_NEAR(kept / dn, q, 6 * sd) << "keep rate, p " << p;
    EXPECT_NEAR(sum / dn, 1.0, 6 * std::sqrt(p / q / dn)) << "inverted dropout keeps the mean, p " << p;
    // independence: neighbours within a stream and the same element across streams
    EXPECT_NEAR(pairs / dn, q * q, 6 * std::sqrt(q * q * (1 - q * q) / dn) * 2) << "neighbour pairs, p " << p;
    EXPECT_NEAR(both / dn, q * q, 6 * std::sqrt(q * q * (1 - q * q) / dn)) << "across streams, p " << p;
  }
}

TEST_P(Ops, DropoutBackward) {
  const Shape s{13, 77};
  auto x = randn(shape_numel(s)), dy = randn(shape_numel(s));
  const RngKey key{5, rng_stream(2, 9, 4, 1)};
  const float p = 0.3f;
  Tensor y = be().dropout(T(x, s), p, key);
  Tensor dx = be().dropout_backward(T(dy, s), p, key);
  auto yv = F(y), dv = F(dx);
  for (std::size_t i = 0; i < yv.size(); ++i) {
    const bool kept = philox_uniform_at(key, i) >= p;
    ASSERT_EQ(yv[i] != 0.f, kept) << i;
    ASSERT_EQ(dv[i] != 0.f, kept) << "backward redraws the forward mask, at " << i;
  }
  Vec ref(dy.size());
  for (std::size_t i = 0; i < dy.size(); ++i) ref[i] = philox_uniform_at(key, i) >= p ? dy[i] / (1.0 - p) : 0.0;
  EXPECT_TRUE(close(D(dx), ref, 1e-6, 0));
  // finite differences on a small slice of the same stream
  const Shape ss{4, 9};
  auto xs = randn(36), gs = randn(36);
  Tensor dxs = be().dropout_backward(T(gs, ss), p, key);
  auto f = [&](const std::vector<float>& v) { return F(be().dropout(T(v, ss), p, key)); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, xs, D(gs), D(dxs))));
  // p == 0 is the identity
  EXPECT_EQ(F(be().dropout(T(x, s), 0.f, key)), x);
}

}  // namespace
}  // namespace sk::test
