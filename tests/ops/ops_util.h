// ops_util.h — the fixture of the one ops suite (`Ops`, instantiated for cpu and cuda in
// test_ops_main.cpp) and comparison helpers shared by the tests/ops files.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/core/backend.h"
#include "tests/reference/finite_diff.h"
#include "tests/reference/reference.h"

namespace sk {
// gtest prints the parameter of a failing test with this.
inline void PrintTo(Device d, std::ostream* os) { *os << device_name(d); }
}  // namespace sk

namespace sk::test {

using skref::Vec;

class Ops : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (GetParam() == Device::cuda && !has_backend(Device::cuda)) GTEST_SKIP() << "no CUDA backend/GPU";
  }
  Device dev() const { return GetParam(); }
  Backend& be() const { return backend_for(dev()); }

 public:  // also used by free helper functions in the test files
  std::vector<float> randu(std::int64_t n, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = d(rng_);
    return v;
  }
  std::vector<float> randn(std::int64_t n, float stddev = 1.f) {
    std::normal_distribution<float> d(0.f, stddev);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = d(rng_);
    return v;
  }
  std::vector<std::int64_t> randint(std::int64_t n, std::int64_t lo, std::int64_t hi) {  // [lo, hi)
    std::uniform_int_distribution<std::int64_t> d(lo, hi - 1);
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = d(rng_);
    return v;
  }
  // Values with pairwise gaps >= gap (shuffled), for ops with kinks (max, topk) under finite differences.
  std::vector<float> distinct(std::int64_t n, float gap = 0.05f) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = gap * static_cast<float>(i - n / 2);
    std::shuffle(v.begin(), v.end(), rng_);
    return v;
  }
  std::mt19937_64& rng() { return rng_; }

  Tensor T(const std::vector<float>& v, const Shape& s) const { return Tensor::from_vector(v, s, dev()); }
  Tensor I(const std::vector<std::int64_t>& v, const Shape& s) const { return Tensor::from_vector(v, s, dev()); }
  Tensor M(const std::vector<std::uint8_t>& v, const Shape& s) const { return Tensor::from_vector(v, s, dev()); }

  static std::vector<float> F(const Tensor& t) { return t.to_vector<float>(); }
  static Vec D(const Tensor& t) {
    auto v = t.to_vector<float>();
    return Vec(v.begin(), v.end());
  }
  static Vec D(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

 private:
  std::mt19937_64 rng_{0x5eed1234abcdull};
};

// |got - ref| <= atol + rtol * |ref| everywhere (and same length); reports the worst entry.
inline ::testing::AssertionResult close(const Vec& got, const Vec& ref, double rtol, double atol) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs reference " << ref.size();
  double worst = 0;
  std::size_t wi = 0;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(got[i] - ref[i]);
    double tol = atol + rtol * std::fabs(ref[i]);
    bool same_special = (std::isnan(got[i]) && std::isnan(ref[i])) || (std::isinf(ref[i]) && got[i] == ref[i]);
    if (same_special) continue;
    if (!(err <= tol)) {
      ++bad;
      double ratio = tol > 0 ? err / tol : INFINITY;
      if (!(ratio <= worst)) {
        worst = ratio;
        wi = i;
      }
    }
  }
  if (!bad) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " entries out of tolerance (rtol " << rtol
                                       << ", atol " << atol << "); worst [" << wi << "]: got " << got[wi]
                                       << ", reference " << ref[wi];
}

inline ::testing::AssertionResult fd_ok(const skref::FdResult& r) {
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.report;
}

// Sum of |x|: scale for absolute tolerances of sums (a sum of n f32 terms is exact to ~n eps sum|x|).
inline double abs_sum(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += std::fabs(x);
  return s;
}

}  // namespace sk::test

// Expects `stmt` to throw sk::Error whose message contains `needle` (normally the op's name).
#define EXPECT_SK_ERROR(stmt, needle)                                                              \
  do {                                                                                             \
    bool thrown_ = false;                                                                          \
    try {                                                                                          \
      stmt;                                                                                        \
    } catch (const ::sk::Error& e_) {                                                              \
      thrown_ = true;                                                                              \
      EXPECT_NE(std::string(e_.what()).find(needle), std::string::npos)                            \
          << "message does not name '" << (needle) << "': " << e_.what();                          \
    }                                                                                              \
    EXPECT_TRUE(thrown_) << #stmt " did not throw sk::Error";                                      \
  } while (0)
