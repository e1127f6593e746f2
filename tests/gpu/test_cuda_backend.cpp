// test_cuda_backend.cpp — CUDA-only checks (label `gpu`), run by tests/gpu/run.sh on a GPU machine.
//
// 1. CUDA vs CPU, op by op: every Backend op is run on both backends with the same inputs (odd
//    shapes, shapes that take each kernel path: warp rows, block rows, split reductions, sort vs
//    select top-k, widened copies) and compared: bit for bit where the CPU twin is exact (fill,
//    casts, Philox draws, dropout, copies, indices), within a tolerance elsewhere.
// 2. CUDA specifics: the caching allocator (size classes, reuse without cudaMalloc, stats),
//    copies in every direction, deferred index errors, cross-entropy target checks.
// Without a GPU every test is skipped (GTEST_SKIP, which ctest shows as skipped). To check the test
// code itself on a machine without a GPU, run the binary with SK_GPU_TESTS_ON_CPU=1: the "device
// under test" is then the CPU backend (CPU vs CPU; CUDA-specific tests still skip).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/core/backend.h"
#ifdef SK_TEST_CUDA
#include "model/cuda/allocator.h"
#include "model/cuda/cuda_backend.h"
#endif

namespace sk {
namespace {

// ---- harness -------------------------------------------------------------------------------------
bool on_cpu_selfcheck() {
  const char* e = std::getenv("SK_GPU_TESTS_ON_CPU");
  return e && std::string(e) == "1";
}

// The device under test: CUDA when present, else CPU in self-check mode; nullopt -> skip.
bool target(Device& d) {
  if (has_backend(Device::cuda)) {
    d = Device::cuda;
    return true;
  }
  if (on_cpu_selfcheck()) {
    d = Device::cpu;
    return true;
  }
  return false;
}

#define SK_TARGET(dev)                                                                                 \
  Device dev = Device::cpu;                                                                            \
  if (!target(dev)) GTEST_SKIP() << "no CUDA backend (built without CUDA, or no GPU found)";          \
  Backend& tb = backend_for(dev);                                                                      \
  Backend& cb = backend_for(Device::cpu);                                                              \
  (void)tb;                                                                                            \
  (void)cb

#define SK_NEED_CUDA()                                                                                 \
  if (!has_backend(Device::cuda)) GTEST_SKIP() << "no CUDA backend (built without CUDA, or no GPU found)"

std::vector<float> uniform(std::int64_t n, std::uint64_t seed, float lo = -2.f, float hi = 2.f) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(g);
  return v;
}

Tensor randt(const Shape& s, std::uint64_t seed, float lo = -2.f, float hi = 2.f) {
  return Tensor::from_vector<float>(uniform(shape_numel(s), seed, lo, hi), s);
}

// Small integers: many exact ties (max/min/argmax/topk tie rules).
Tensor ties(const Shape& s, std::uint64_t seed, int levels = 4) {
  std::mt19937_64 g(seed);
  std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
  for (auto& x : v) x = static_cast<float>(static_cast<int>(g() % static_cast<std::uint64_t>(levels)) - levels / 2);
  return Tensor::from_vector<float>(v, s);
}

Tensor ids_tensor(const Shape& s, std::int64_t hi, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<std::int64_t> v(static_cast<std::size_t>(shape_numel(s)));
  for (auto& x : v) x = static_cast<std::int64_t>(g() % static_cast<std::uint64_t>(hi));
  return Tensor::from_vector<std::int64_t>(v, s);
}

Tensor mask_tensor(const Shape& s, std::uint64_t seed, double keep = 0.7) {
  std::mt19937_64 g(seed);
  std::bernoulli_distribution b(keep);
  std::vector<std::uint8_t> v(static_cast<std::size_t>(shape_numel(s)));
  for (auto& x : v) x = b(g) ? 1 : 0;
  return Tensor::from_vector<std::uint8_t>(v, s);
}

// A copy on device d (always a new buffer, also when d is the tensor's device, so that in-place ops
// in the CPU self-check do not alias the reference's inputs).
Tensor to_dev(const Tensor& t, Device d) { return t.device() == d ? t.clone() : t.to(d); }

// Raw bytes of a tensor on the host.
std::vector<std::uint8_t> bytes_of(const Tensor& t) {
  std::vector<std::uint8_t> out(t.nbytes());
  if (t.nbytes() == 0) return out;
  switch (t.dtype()) {
    case DType::f32: { auto v = t.to_vector<float>(); std::memcpy(out.data(), v.data(), out.size()); break; }
    case DType::bf16: { auto v = t.to_vector<std::uint16_t>(); std::memcpy(out.data(), v.data(), out.size()); break; }
    case DType::i32: { auto v = t.to_vector<std::int32_t>(); std::memcpy(out.data(), v.data(), out.size()); break; }
    case DType::i64: { auto v = t.to_vector<std::int64_t>(); std::memcpy(out.data(), v.data(), out.size()); break; }
    case DType::u8: out = t.to_vector<std::uint8_t>(); break;
  }
  return out;
}

void expect_same_bits(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  const auto g = bytes_of(got), w = bytes_of(want);
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (g[i] != w[i] && bad++ == 0) first = i;
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << g.size() << " bytes differ, first at byte " << first;
}

// |got - want| <= atol + rtol * |want|; NaN matches NaN, infinities must match exactly.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what << ": got " << got.str() << ", want " << want.str();
  const Tensor g32 = got.dtype() == DType::f32 ? got : backend_of(got).cast(got, DType::f32);
  const Tensor w32 = want.dtype() == DType::f32 ? want : backend_of(want).cast(want, DType::f32);
  const auto g = g32.to_vector<float>(), w = w32.to_vector<float>();
  std::size_t bad = 0;
  std::string first;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double a = g[i], b = w[i];
    bool ok;
    if (std::isnan(b) || std::isnan(a)) ok = std::isnan(a) && std::isnan(b);
    else if (std::isinf(b) || std::isinf(a)) ok = a == b;
    else ok = std::fabs(a - b) <= atol + rtol * std::fabs(b);
    if (!ok && bad++ == 0) first = cat("index ", i, ": got ", a, ", want ", b);
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << g.size() << " elements differ; first " << first;
}

// ---- fill / cast / randomness -------------------------------------------------------------------
TEST(CudaVsCpu, FillEveryDtype) {
  SK_TARGET(dev);
  for (DType dt : {DType::f32, DType::bf16, DType::i32, DType::i64, DType::u8}) {
    for (float v : {0.f, 2.5f, -3.75f, 1e9f, 7.f}) {
      if (dt == DType::u8 && (v < 0 || v > 255)) continue;  // out of range -> u8 is undefined on the host
      Tensor a = Tensor::empty({3, 37}, dt), b = Tensor::empty({3, 37}, dt, dev);
      cb.fill(a, v);
      tb.fill(b, v);
      expect_same_bits(b, a, cat("fill ", dtype_name(dt), " ", v));
    }
  }
}

TEST(CudaVsCpu, CastsBitExact) {
  SK_TARGET(dev);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> special = {0.f, -0.f, 1.f, -1.f, inf, -inf, nan, 1e-40f, -3e-39f, 3.4e38f, 65504.f,
                                1.00390625f /* tie: 1 + 2^-8 */, 1.01171875f /* tie, odd */, 0.1f, 123456.789f};
  auto base = uniform(1000, 11, -100.f, 100.f);
  special.insert(special.end(), base.begin(), base.end());
  Tensor x = Tensor::from_vector<float>(special, {static_cast<std::int64_t>(special.size())});
  Tensor xd = to_dev(x, dev);
  expect_same_bits(tb.cast(xd, DType::bf16), cb.cast(x, DType::bf16), "f32 -> bf16");
  Tensor h = cb.cast(x, DType::bf16);
  expect_same_bits(tb.cast(to_dev(h, dev), DType::f32), cb.cast(h, DType::f32), "bf16 -> f32");
  Tensor fin = randt({513}, 12, -1e6f, 1e6f);
  expect_same_bits(tb.cast(to_dev(fin, dev), DType::i64), cb.cast(fin, DType::i64), "f32 -> i64");
  Tensor i64 = ids_tensor({300}, 1 << 30, 13);
  expect_same_bits(tb.cast(to_dev(i64, dev), DType::f32), cb.cast(i64, DType::f32), "i64 -> f32");
  Tensor u8 = mask_tensor({300}, 14);
  expect_same_bits(tb.cast(to_dev(u8, dev), DType::f32), cb.cast(u8, DType::f32), "u8 -> f32");
  std::vector<std::int32_t> iv(301);
  for (std::size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<std::int32_t>(i * 7919) - 1000000;
  Tensor i32 = Tensor::from_vector<std::int32_t>(iv, {301});
  expect_same_bits(tb.cast(to_dev(i32, dev), DType::f32), cb.cast(i32, DType::f32), "i32 -> f32");
  expect_same_bits(tb.cast(xd, DType::f32), x, "f32 -> f32 (copy)");
}

TEST(CudaVsCpu, RandUniformAndDropoutBitExact) {
  SK_TARGET(dev);
  for (std::int64_t n : {1, 3, 4, 5, 1023, 100003}) {
    for (RngKey key : {RngKey{0, 0}, RngKey{42, rng_stream(3, 17, 2, 1)}, RngKey{~0ull, 123456789}}) {
      expect_same_bits(tb.rand_uniform({n}, key), cb.rand_uniform({n}, key), cat("rand_uniform n=", n));
      Tensor x = randt({n}, static_cast<std::uint64_t>(n));
      for (float p : {0.1f, 0.5f, 0.9f}) {
        expect_same_bits(tb.dropout(to_dev(x, dev), p, key), cb.dropout(x, p, key), cat("dropout n=", n, " p=", p));
        expect_same_bits(tb.dropout_backward(to_dev(x, dev), p, key), cb.dropout_backward(x, p, key),
                         cat("dropout_backward n=", n, " p=", p));
      }
    }
  }
}

// ---- GEMM ---------------------------------------------------------------------------------------
struct GemmCase {
  std::int64_t batch, M, N, K;
  bool ta, tb, shared_b;
  float alpha, beta;
};

void run_gemm(Backend& cb, Backend& tb, Device dev, const GemmCase& g, DType in, DType out, double rtol,
              double atol, std::uint64_t seed) {
  Shape as = g.ta ? Shape{g.K, g.M} : Shape{g.M, g.K};
  Shape bs = g.tb ? Shape{g.N, g.K} : Shape{g.K, g.N};
  Shape cs{g.M, g.N};
  if (g.batch > 0) {
    as.insert(as.begin(), g.batch);
    if (!g.shared_b) bs.insert(bs.begin(), g.batch);
    cs.insert(cs.begin(), g.batch);
  }
  Tensor a = randt(as, seed), b = randt(bs, seed + 1), c0 = randt(cs, seed + 2);
  if (in == DType::bf16) {
    a = cb.cast(a, DType::bf16);
    b = cb.cast(b, DType::bf16);
  }
  if (out == DType::bf16) c0 = cb.cast(c0, DType::bf16);
  Tensor cw = c0.clone(), cg = to_dev(c0, dev);
  cb.gemm(cw, a, b, g.ta, g.tb, g.alpha, g.beta);
  tb.gemm(cg, to_dev(a, dev), to_dev(b, dev), g.ta, g.tb, g.alpha, g.beta);
  expect_close(cg, cw, rtol, atol,
               cat("gemm batch=", g.batch, " M=", g.M, " N=", g.N, " K=", g.K, " ta=", g.ta, " tb=", g.tb,
                   " shared_b=", g.shared_b, " alpha=", g.alpha, " beta=", g.beta, " in=", dtype_name(in),
                   " out=", dtype_name(out)));
}

TEST(CudaVsCpu, Gemm) {
  SK_TARGET(dev);
  std::vector<GemmCase> cases;
  for (bool ta : {false, true})
    for (bool tbb : {false, true}) {
      cases.push_back({0, 37, 19, 53, ta, tbb, false, 1.f, 0.f});
      cases.push_back({3, 5, 33, 17, ta, tbb, false, 0.5f, 0.25f});
      cases.push_back({4, 7, 9, 65, ta, tbb, true, 1.f, 0.f});   // shared B (folded when !ta)
      cases.push_back({2, 1, 1, 1, ta, tbb, true, -2.f, 1.f});
    }
  cases.push_back({0, 130, 70, 0, false, false, false, 1.f, 0.5f});  // K == 0: C = beta C
  cases.push_back({2, 64, 128, 256, false, true, false, 1.f, 0.f});
  std::uint64_t seed = 100;
  for (const auto& g : cases) {
    run_gemm(cb, tb, dev, g, DType::f32, DType::f32, 1e-4, 1e-4, seed += 3);
    run_gemm(cb, tb, dev, g, DType::bf16, DType::f32, 1e-4, 1e-3, seed += 3);
    run_gemm(cb, tb, dev, g, DType::bf16, DType::bf16, 1e-2, 1e-2, seed += 3);
    run_gemm(cb, tb, dev, g, DType::f32, DType::bf16, 1e-2, 1e-2, seed += 3);
  }
  // matmul convenience path
  Tensor a = randt({6, 10}, 7), b = randt({10, 3}, 8);
  expect_close(tb.matmul(to_dev(a, dev), to_dev(b, dev)), cb.matmul(a, b), 1e-5, 1e-5, "matmul");
}

// ---- elementwise --------------------------------------------------------------------------------
TEST(CudaVsCpu, BinaryForwardBackward) {
  SK_TARGET(dev);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{37}, {37}},      {{3, 1, 5}, {4, 1}},     {{2, 3, 4}, {4}},       {{2, 3, 4}, {1}},
      {{1}, {5, 6}},     {{7, 1, 3, 1}, {1, 5, 1, 2}}, {{2, 1, 3, 1, 2, 1, 2}, {1, 4, 1, 3, 1, 2, 1}},
      {{1000, 33}, {33}}};
  std::uint64_t seed = 200;
  for (const auto& [sa, sbs] : shapes) {
    for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::max, BinaryOp::min}) {
      const bool tie_op = op == BinaryOp::max || op == BinaryOp::min;
      Tensor a = tie_op ? ties(sa, seed++) : randt(sa, seed++);
      Tensor b = tie_op ? ties(sbs, seed++) : (op == BinaryOp::div ? randt(sbs, seed++, 0.5f, 2.f) : randt(sbs, seed++));
      const std::string what = cat(op_name(op), " ", shape_str(sa), " x ", shape_str(sbs));
      Tensor y = cb.binary(a, b, op);
      expect_close(tb.binary(to_dev(a, dev), to_dev(b, dev), op), y, 1e-6, 1e-6, what);
      Tensor dy = randt(y.shape(), seed++);
      auto [da, db] = cb.binary_backward(dy, a, b, op);
      auto [ga, gb] = tb.binary_backward(to_dev(dy, dev), to_dev(a, dev), to_dev(b, dev), op);
      expect_close(ga, da, 1e-5, 1e-5, what + " da");
      expect_close(gb, db, 1e-5, 1e-5, what + " db");
    }
  }
}

TEST(CudaVsCpu, UnaryForwardBackward) {
  SK_TARGET(dev);
  const std::vector<std::pair<UnaryOp, float>> ops = {
      {UnaryOp::neg, 0.f},        {UnaryOp::exp, 0.f},     {UnaryOp::log, 0.f},        {UnaryOp::sqrt, 0.f},
      {UnaryOp::rsqrt, 0.f},      {UnaryOp::square, 0.f},  {UnaryOp::abs, 0.f},        {UnaryOp::relu, 0.f},
      {UnaryOp::leaky_relu, 0.1f}, {UnaryOp::gelu, 0.f},   {UnaryOp::scale, -1.5f},    {UnaryOp::add_scalar, 0.25f},
      {UnaryOp::pow_scalar, 2.5f}, {UnaryOp::sigmoid, 0.f}, {UnaryOp::tanh, 0.f}};
  std::uint64_t seed = 300;
  for (const auto& [op, alpha] : ops) {
    const bool positive = op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::rsqrt || op == UnaryOp::pow_scalar;
    for (Shape s : {Shape{1}, Shape{5, 77}, Shape{4099}}) {
      Tensor x = positive ? randt(s, seed++, 0.1f, 4.f) : randt(s, seed++, -4.f, 4.f);
      const std::string what = cat(op_name(op), " ", shape_str(s));
      Tensor y = cb.unary(x, op, alpha);
      Tensor yg = tb.unary(to_dev(x, dev), op, alpha);
      expect_close(yg, y, 2e-6, 1e-6, what);
      Tensor dy = randt(s, seed++);
      expect_close(tb.unary_backward(to_dev(dy, dev), to_dev(x, dev), yg, op, alpha), cb.unary_backward(dy, x, y, op, alpha),
                   1e-5, 1e-6, what + " backward");
    }
  }
}

TEST(CudaVsCpu, AxpyWhereMaskedFill) {
  SK_TARGET(dev);
  Tensor x = randt({3, 1001}, 1), y = randt({3, 1001}, 2), m = mask_tensor({3, 1001}, 3);
  Tensor yc = y.clone(), yg = to_dev(y, dev);
  cb.axpy(yc, x, -0.75f);
  tb.axpy(yg, to_dev(x, dev), -0.75f);
  expect_close(yg, yc, 1e-6, 1e-6, "axpy");
  expect_same_bits(tb.where(to_dev(m, dev), to_dev(x, dev), to_dev(y, dev)), cb.where(m, x, y), "where");
  expect_same_bits(tb.masked_fill(to_dev(x, dev), to_dev(m, dev), -1e9f), cb.masked_fill(x, m, -1e9f), "masked_fill");
}

TEST(CudaVsCpu, AdamW) {
  SK_TARGET(dev);
  Tensor p = randt({1001}, 1), m = randt({1001}, 2, 0.f, 0.1f), v = randt({1001}, 3, 0.f, 0.1f);
  Tensor pg = to_dev(p, dev), mg = to_dev(m, dev), vg = to_dev(v, dev);
  for (std::int64_t step = 1; step <= 3; ++step) {
    Tensor g = randt({1001}, 10 + static_cast<std::uint64_t>(step));
    cb.adamw_update(p, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
    tb.adamw_update(pg, to_dev(g, dev), mg, vg, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
  }
  expect_close(pg, p, 1e-6, 1e-7, "adamw param");
  expect_close(mg, m, 1e-6, 1e-7, "adamw m");
  expect_close(vg, v, 1e-6, 1e-7, "adamw v");
}

// ---- reductions ---------------------------------------------------------------------------------
struct RedCase {
  Shape shape;
  int axis;
};
const std::vector<RedCase> kRedCases = {
    {{37}, 0},          {{5, 7}, 1},         {{5, 7}, 0},           {{100, 33, 65}, 0}, {{100, 33, 65}, 1},
    {{100, 33, 65}, 2}, {{3, 1500}, 1},      {{2, 100000}, 1} /* row split */,  {{1, 5000, 7}, 1} /* column split */,
    {{300, 2}, 0},      {{4, 1, 3}, 1}};

TEST(CudaVsCpu, ReduceForwardBackward) {
  SK_TARGET(dev);
  std::uint64_t seed = 400;
  for (const auto& rc : kRedCases) {
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max}) {
      for (bool keep : {false, true}) {
        const std::string what = cat(op_name(op), " ", shape_str(rc.shape), " axis ", rc.axis, keep ? " keepdim" : "");
        Tensor x = op == ReduceOp::max ? ties(rc.shape, seed++, 7) : randt(rc.shape, seed++);
        const double n = static_cast<double>(rc.shape[static_cast<std::size_t>(rc.axis)]);
        Tensor y = cb.reduce(x, rc.axis, op, keep);
        Tensor yg = tb.reduce(to_dev(x, dev), rc.axis, op, keep);
        expect_close(yg, y, 1e-5, op == ReduceOp::sum ? 1e-6 * n : 1e-5, what);
        Tensor dy = randt(y.shape(), seed++);
        expect_close(tb.reduce_backward(to_dev(dy, dev), to_dev(x, dev), yg, rc.axis, op, keep),
                     cb.reduce_backward(dy, x, y, rc.axis, op, keep), 1e-6, 1e-7, what + " backward");
      }
    }
  }
  // NaN propagates through max (and gets the gradient at its first position).
  std::vector<float> v = {1.f, std::numeric_limits<float>::quiet_NaN(), 3.f, 3.f, 2.f, 5.f};
  Tensor x = Tensor::from_vector<float>(v, {2, 3});
  Tensor y = cb.reduce(x, 1, ReduceOp::max);
  Tensor yg = tb.reduce(to_dev(x, dev), 1, ReduceOp::max);
  expect_close(yg, y, 0, 0, "max with NaN");
  Tensor dy = randt({2}, 5);
  expect_close(tb.reduce_backward(to_dev(dy, dev), to_dev(x, dev), yg, 1, ReduceOp::max),
               cb.reduce_backward(dy, x, y, 1, ReduceOp::max), 0, 0, "max backward with NaN");
  expect_close(tb.sum_to(randt({4, 3, 5}, 9).to(dev), {3, 1}), cb.sum_to(randt({4, 3, 5}, 9), {3, 1}), 1e-5, 1e-5,
               "sum_to");
}

TEST(CudaVsCpu, LogSumExp) {
  SK_TARGET(dev);
  std::uint64_t seed = 500;
  for (const auto& rc : kRedCases) {
    Tensor x = randt(rc.shape, seed++, -10.f, 10.f);
    const std::string what = cat("logsumexp ", shape_str(rc.shape), " axis ", rc.axis);
    Tensor y = cb.logsumexp(x, rc.axis);
    Tensor yg = tb.logsumexp(to_dev(x, dev), rc.axis);
    expect_close(yg, y, 1e-5, 1e-5, what);
    Tensor dy = randt(y.shape(), seed++);
    expect_close(tb.logsumexp_backward(to_dev(dy, dev), to_dev(x, dev), yg, rc.axis), cb.logsumexp_backward(dy, x, y, rc.axis),
                 1e-5, 1e-6, what + " backward");
  }
  const float ninf = -std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector<float>({ninf, ninf, ninf, 1.f, ninf, 2.f}, {2, 3});
  Tensor y = cb.logsumexp(x, 1);
  Tensor yg = tb.logsumexp(to_dev(x, dev), 1);
  expect_close(yg, y, 1e-6, 1e-6, "logsumexp with -inf rows");
  Tensor dy = randt({2}, 1);
  expect_close(tb.logsumexp_backward(to_dev(dy, dev), to_dev(x, dev), yg, 1), cb.logsumexp_backward(dy, x, y, 1), 1e-6, 1e-6,
               "logsumexp backward with -inf rows");
}

TEST(CudaVsCpu, Cumsum) {
  SK_TARGET(dev);
  std::uint64_t seed = 600;
  for (const auto& rc : std::vector<RedCase>{{{100}, 0}, {{3, 1000}, 1}, {{4, 50, 3}, 1}, {{2, 64}, 1}, {{2, 65}, 1},
                                             {{5, 7}, 0}, {{1, 70000}, 1}}) {
    for (bool rev : {false, true}) {
      Tensor x = randt(rc.shape, seed++);
      const double n = static_cast<double>(rc.shape[static_cast<std::size_t>(rc.axis)]);
      expect_close(tb.cumsum(to_dev(x, dev), rc.axis, rev), cb.cumsum(x, rc.axis, rev), 1e-6, 1e-7 * n,
                   cat("cumsum ", shape_str(rc.shape), " axis ", rc.axis, rev ? " reverse" : ""));
    }
  }
}

TEST(CudaVsCpu, TopKAndArgmax) {
  SK_TARGET(dev);
  const float nan = std::numeric_limits<float>::quiet_NaN(), ninf = -std::numeric_limits<float>::infinity();
  Tensor special = Tensor::from_vector<float>({1.f, nan, 3.f, 3.f, ninf, nan, 0.f, 3.f}, {1, 8});
  std::uint64_t seed = 700;
  struct Case {
    Tensor x;
    std::int64_t k;
  };
  std::vector<Case> cases = {{special, 8},          {special, 3},          {ties({4, 7}, seed++), 3},
                             {randt({3, 1000}, seed++), 10}, {ties({2, 1025}, seed++, 50), 1025},
                             {randt({2, 20000}, seed++), 5} /* selection path */, {ties({3, 33}, seed++), 33},
                             {randt({5, 1}, seed++), 1},     {ties({2, 40000}, seed++, 9), 4}};
  for (auto& c : cases) {
    const std::string what = cat("topk ", c.x.str(), " k=", c.k);
    TopKOut want = cb.topk(c.x, c.k);
    TopKOut got = tb.topk(to_dev(c.x, dev), c.k);
    expect_same_bits(got.indices, want.indices, what + " indices");
    expect_same_bits(got.values, want.values, what + " values");
    expect_same_bits(tb.argmax(to_dev(c.x, dev)), cb.argmax(c.x), cat("argmax ", c.x.str()));
  }
}

// ---- softmax family -----------------------------------------------------------------------------
TEST(CudaVsCpu, SoftmaxMaskedScaled) {
  SK_TARGET(dev);
  std::uint64_t seed = 800;
  for (Shape s : {Shape{5, 7}, Shape{2, 3, 1000}, Shape{3, 3000}, Shape{1, 1}}) {
    for (bool masked : {false, true}) {
      for (float fill : {-3.4028234663852886e38f, -1e4f}) {
        Tensor x = randt(s, seed++, -5.f, 5.f);
        Tensor m;
        if (masked) {
          m = mask_tensor(s, seed++);
          // first row fully masked: becomes uniform (reference semantics)
          std::vector<std::uint8_t> mv = m.to_vector<std::uint8_t>();
          for (std::int64_t j = 0; j < s.back(); ++j) mv[static_cast<std::size_t>(j)] = 0;
          m = Tensor::from_vector<std::uint8_t>(mv, s);
        }
        const std::string what = cat("softmax ", shape_str(s), masked ? " masked" : "", " fill ", fill);
        Tensor y = cb.softmax(x, m, 0.3f, fill);
        Tensor yg = tb.softmax(to_dev(x, dev), masked ? to_dev(m, dev) : Tensor(), 0.3f, fill);
        expect_close(yg, y, 1e-5, 1e-7, what);
        Tensor dy = randt(s, seed++);
        expect_close(tb.softmax_backward(to_dev(dy, dev), yg, masked ? to_dev(m, dev) : Tensor(), 0.3f),
                     cb.softmax_backward(dy, y, m, 0.3f), 1e-4, 1e-6, what + " backward");
      }
    }
  }
}

TEST(CudaVsCpu, LogSoftmax) {
  SK_TARGET(dev);
  std::uint64_t seed = 900;
  for (Shape s : {Shape{5, 7}, Shape{3, 3000}, Shape{4, 2, 33}}) {
    Tensor x = randt(s, seed++, -8.f, 8.f);
    Tensor y = cb.log_softmax(x);
    Tensor yg = tb.log_softmax(to_dev(x, dev));
    expect_close(yg, y, 1e-5, 1e-5, cat("log_softmax ", shape_str(s)));
    Tensor dy = randt(s, seed++);
    expect_close(tb.log_softmax_backward(to_dev(dy, dev), yg), cb.log_softmax_backward(dy, y), 1e-5, 1e-5,
                 cat("log_softmax backward ", shape_str(s)));
  }
}

TEST(CudaVsCpu, CrossEntropy) {
  SK_TARGET(dev);
  std::uint64_t seed = 1000;
  for (std::int64_t V : {11, 3000}) {
    const std::int64_t R = 37;
    Tensor logits = randt({R, V}, seed++, -6.f, 6.f);
    std::vector<std::int64_t> t = ids_tensor({R}, V, seed++).to_vector<std::int64_t>();
    for (std::size_t i = 0; i < t.size(); i += 4) t[i] = -100;  // ignored rows
    Tensor targets = Tensor::from_vector<std::int64_t>(t, {R});
    CrossEntropyOut want = cb.cross_entropy(logits, targets, -100);
    CrossEntropyOut got = tb.cross_entropy(to_dev(logits, dev), to_dev(targets, dev), -100);
    const std::string what = cat("cross_entropy V=", V);
    EXPECT_EQ(got.count, want.count) << what;
    expect_close(got.loss, want.loss, 1e-5, 1e-6, what + " loss");
    expect_close(got.lse, want.lse, 1e-5, 1e-5, what + " lse");
    expect_close(tb.cross_entropy_backward(1.3f, to_dev(logits, dev), to_dev(targets, dev), got, -100),
                 cb.cross_entropy_backward(1.3f, logits, targets, want, -100), 1e-5, 1e-7, what + " backward");
  }
  // every row ignored: loss 0, count 0, zero gradient
  Tensor logits = randt({3, 5}, 1);
  Tensor targets = Tensor::from_vector<std::int64_t>({-1, -1, -1}, {3});
  CrossEntropyOut got = tb.cross_entropy(to_dev(logits, dev), to_dev(targets, dev), -1);
  EXPECT_EQ(got.count, 0);
  EXPECT_EQ(got.loss.item(), 0.f);
  expect_same_bits(tb.cross_entropy_backward(1.f, to_dev(logits, dev), to_dev(targets, dev), got, -1),
                   Tensor::zeros({3, 5}, DType::f32), "cross_entropy backward, all ignored");
  // a bad target is a user error, reported at once
  Tensor bad = Tensor::from_vector<std::int64_t>({0, 5, 1}, {3});
  EXPECT_THROW(tb.cross_entropy(to_dev(logits, dev), to_dev(bad, dev), -1), Error);
}

// ---- layernorm ----------------------------------------------------------------------------------
TEST(CudaVsCpu, LayerNorm) {
  SK_TARGET(dev);
  std::uint64_t seed = 1100;
  for (Shape s : {Shape{4, 7}, Shape{3000, 40} /* split dw/db */, Shape{5, 2000} /* block rows */, Shape{2, 3, 1}}) {
    for (bool affine : {true, false}) {
      const std::int64_t C = s.back();
      Tensor x = randt(s, seed++, -3.f, 5.f);
      Tensor w = affine ? randt({C}, seed++) : Tensor(), b = affine ? randt({C}, seed++) : Tensor();
      const std::string what = cat("layernorm ", shape_str(s), affine ? " affine" : "");
      LayerNormOut want = cb.layernorm(x, w, b, 1e-5f);
      LayerNormOut got = tb.layernorm(to_dev(x, dev), affine ? to_dev(w, dev) : Tensor(), affine ? to_dev(b, dev) : Tensor(), 1e-5f);
      expect_close(got.y, want.y, 1e-4, 1e-5, what + " y");
      expect_close(got.mean, want.mean, 1e-5, 1e-5, what + " mean");
      expect_close(got.rstd, want.rstd, 1e-4, 1e-5, what + " rstd");
      Tensor dy = randt(s, seed++);
      Tensor dw = affine ? Tensor::full({C}, 1.f) : Tensor(), db = affine ? Tensor::full({C}, -1.f) : Tensor();
      Tensor dwg = affine ? to_dev(dw, dev) : Tensor(), dbg = affine ? to_dev(db, dev) : Tensor();
      Tensor dx = cb.layernorm_backward(dy, x, w, want, dw, db);
      Tensor dxg = tb.layernorm_backward(to_dev(dy, dev), to_dev(x, dev), affine ? to_dev(w, dev) : Tensor(), got, dwg, dbg);
      expect_close(dxg, dx, 1e-3, 1e-4, what + " dx");
      if (affine) {
        const double rows = static_cast<double>(x.numel() / C);
        expect_close(dwg, dw, 1e-4, 1e-5 * rows, what + " dw (accumulated)");
        expect_close(dbg, db, 1e-4, 1e-5 * rows, what + " db (accumulated)");
      }
    }
  }
}

// ---- embedding, gather/scatter -------------------------------------------------------------------
TEST(CudaVsCpu, EmbeddingAndScatterAdd) {
  SK_TARGET(dev);
  Tensor table = randt({50, 33}, 1);
  Tensor ids = ids_tensor({3, 7}, 50, 2);  // with repeats
  expect_same_bits(tb.embedding(to_dev(table, dev), to_dev(ids, dev)), cb.embedding(table, ids), "embedding");
  Tensor dy = randt({3, 7, 33}, 3);
  Tensor dt = randt({50, 33}, 4), dtg = to_dev(dt, dev);
  cb.embedding_backward(dt, dy, ids);
  tb.embedding_backward(dtg, to_dev(dy, dev), to_dev(ids, dev));
  expect_close(dtg, dt, 1e-5, 1e-5, "embedding_backward (accumulated)");
}

TEST(CudaVsCpu, GatherScatterRows) {
  SK_TARGET(dev);
  Tensor idx = ids_tensor({3, 6}, 10, 1);  // repeats
  for (DType dt : {DType::f32, DType::bf16, DType::u8, DType::i64}) {
    for (std::int64_t C : {9, 8, 1, 64}) {
      Tensor x = randt({3, 10, C}, 2, -100.f, 100.f);
      if (dt != DType::f32) x = dt == DType::bf16 ? cb.cast(x, DType::bf16) : cb.cast(cb.unary(x, UnaryOp::abs), DType::i64);
      if (dt == DType::u8) x = mask_tensor({3, 10, C}, 3, 0.5);
      expect_same_bits(tb.gather_rows(to_dev(x, dev), to_dev(idx, dev)), cb.gather_rows(x, idx),
                       cat("gather_rows ", dtype_name(dt), " C=", C));
    }
  }
  Tensor dy = randt({3, 6, 9}, 5), dx = randt({3, 10, 9}, 6), dxg = to_dev(dx, dev);
  cb.scatter_add_rows(dx, dy, idx);
  tb.scatter_add_rows(dxg, to_dev(dy, dev), to_dev(idx, dev));
  expect_close(dxg, dx, 1e-5, 1e-5, "scatter_add_rows (accumulated)");
}

// ---- shape ops ----------------------------------------------------------------------------------
Tensor typed(Backend& cb, const Shape& s, DType dt, std::uint64_t seed) {
  Tensor x = randt(s, seed, -1000.f, 1000.f);
  switch (dt) {
    case DType::f32: return x;
    case DType::bf16: return cb.cast(x, DType::bf16);
    case DType::i64: return cb.cast(x, DType::i64);
    case DType::u8: return mask_tensor(s, seed, 0.5);
    case DType::i32: break;
  }
  return x;
}

TEST(CudaVsCpu, Permute) {
  SK_TARGET(dev);
  std::mt19937_64 g(5);
  for (int trial = 0; trial < 60; ++trial) {
    const int r = 1 + trial % 6;
    Shape s;
    for (int i = 0; i < r; ++i) s.push_back(1 + static_cast<std::int64_t>(g() % 5));
    std::vector<int> perm(static_cast<std::size_t>(r));
    for (int i = 0; i < r; ++i) perm[static_cast<std::size_t>(i)] = i;
    std::shuffle(perm.begin(), perm.end(), g);
    for (DType dt : {DType::f32, DType::bf16, DType::u8, DType::i64}) {
      Tensor x = typed(cb, s, dt, static_cast<std::uint64_t>(trial));
      expect_same_bits(tb.permute(to_dev(x, dev), perm), cb.permute(x, perm),
                       cat("permute ", x.str(), " trial ", trial));
    }
  }
  Tensor big = randt({8, 128, 4, 64}, 9);  // attention-style [B, T, H, D] -> [B, H, T, D]
  expect_same_bits(tb.permute(to_dev(big, dev), {0, 2, 1, 3}), cb.permute(big, {0, 2, 1, 3}), "permute BTHD->BHTD");
}

TEST(CudaVsCpu, NarrowConcatSplitPadRoll) {
  SK_TARGET(dev);
  std::uint64_t seed = 1200;
  for (DType dt : {DType::f32, DType::bf16, DType::u8, DType::i64}) {
    for (Shape s : {Shape{6, 10, 4}, Shape{7, 9, 3}, Shape{33}, Shape{2, 5, 1, 8}}) {
      Tensor x = typed(cb, s, dt, seed++);
      Tensor xg = to_dev(x, dev);
      for (int axis = 0; axis < x.ndim(); ++axis) {
        const std::int64_t n = s[static_cast<std::size_t>(axis)];
        const std::string what = cat(x.str(), " axis ", axis);
        expect_same_bits(tb.narrow(xg, axis, n / 3, n - n / 3 - n / 4), cb.narrow(x, axis, n / 3, n - n / 3 - n / 4),
                         "narrow " + what);
        std::vector<std::int64_t> sizes = {n / 2, n - n / 2};
        auto pc = cb.split(x, axis, sizes);
        auto pg = tb.split(xg, axis, sizes);
        for (std::size_t i = 0; i < pc.size(); ++i) expect_same_bits(pg[i], pc[i], cat("split part ", i, " ", what));
        expect_same_bits(tb.concat({pg[1], pg[0], pg[1]}, axis), cb.concat({pc[1], pc[0], pc[1]}, axis), "concat " + what);
        expect_same_bits(tb.pad(xg, axis, 2, 3, 7.f), cb.pad(x, axis, 2, 3, 7.f), "pad " + what);
        for (std::int64_t shift : {std::int64_t{1}, std::int64_t{-2}, n, 3 * n + 1, std::int64_t{0}})
          expect_same_bits(tb.roll(xg, axis, shift), cb.roll(x, axis, shift), cat("roll ", shift, " ", what));
        // narrow_assign: overwrite
        Tensor part = typed(cb, pc[1].shape(), dt, seed++);
        Tensor dc = x.clone(), dg = to_dev(x, dev);
        cb.narrow_assign(dc, part, axis, n / 2, false);
        tb.narrow_assign(dg, to_dev(part, dev), axis, n / 2, false);
        expect_same_bits(dg, dc, "narrow_assign " + what);
        if (dt == DType::f32) {
          cb.narrow_assign(dc, part, axis, n / 2, true);
          tb.narrow_assign(dg, to_dev(part, dev), axis, n / 2, true);
          expect_close(dg, dc, 1e-6, 1e-6, "narrow_assign accumulate " + what);
        }
      }
    }
  }
}

// ---- CUDA specifics -----------------------------------------------------------------------------
#ifdef SK_TEST_CUDA
TEST(CudaAllocator, SizeClasses) {  // host-only arithmetic: runs without a GPU
  using cu::CachingAllocator;
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(4096), 4096u);
  EXPECT_EQ(CachingAllocator::round_size(4097), 4608u);
  EXPECT_EQ(CachingAllocator::round_size(std::size_t{1} << 30), std::size_t{1} << 30);
  std::mt19937_64 g(1);
  for (int i = 0; i < 100000; ++i) {
    const std::size_t n = 1 + g() % (std::size_t{1} << (1 + g() % 40));
    const std::size_t r = CachingAllocator::round_size(n);
    ASSERT_GE(r, n);
    ASSERT_EQ(r % 512, 0u) << n;
    if (n > 4096) {
      ASSERT_LE(static_cast<double>(r), 1.125 * static_cast<double>(n) + 1) << n;
    }
    ASSERT_EQ(CachingAllocator::round_size(r), r) << n;  // a class maps to itself
  }
}

CudaBackend& cuda_backend() { return static_cast<CudaBackend&>(backend_for(Device::cuda)); }

TEST(CudaAllocator, SteadyStateHasNoCudaMalloc) {
  SK_NEED_CUDA();
  CudaBackend& be = cuda_backend();
  auto step = [&] {
    Tensor a = Tensor::empty({1000, 257}, DType::f32, Device::cuda);
    Tensor b = Tensor::empty({3, 5}, DType::bf16, Device::cuda);
    Tensor c = be.matmul(a, Tensor::empty({257, 31}, DType::f32, Device::cuda));
    be.fill(a, 1.f);
  };
  step();
  be.synchronize();
  const auto s0 = be.allocator().stats();
  for (int i = 0; i < 5; ++i) step();
  be.synchronize();
  const auto s1 = be.allocator().stats();
  EXPECT_EQ(s1.cuda_mallocs, s0.cuda_mallocs);
  EXPECT_GT(s1.cache_hits, s0.cache_hits);
  EXPECT_EQ(s1.bytes_in_use, s0.bytes_in_use);
  EXPECT_GE(s1.peak_bytes, s1.bytes_in_use);
  EXPECT_EQ(s1.reserved, s1.bytes_in_use + s1.cached);
  EXPECT_EQ(be.bytes_in_use(), s1.bytes_in_use);
  be.empty_cache();
  EXPECT_EQ(be.allocator().stats().cached, 0u);
}

TEST(CudaAllocator, OutOfMemoryIsAnErrorAndRecovers) {
  SK_NEED_CUDA();
  CudaBackend& be = cuda_backend();
  EXPECT_THROW(Tensor::empty({std::int64_t{1} << 50}, DType::f32, Device::cuda), Error);  // 4 PiB
  Tensor ok = Tensor::full({10}, 2.f, Device::cuda);
  EXPECT_EQ(ok.to_vector<float>(), std::vector<float>(10, 2.f));
  EXPECT_GE(be.allocator().stats().oom_retries, 1u);
}

TEST(CudaBackend, CopiesEveryDirection) {
  SK_NEED_CUDA();
  Tensor h = randt({5, 123}, 1);
  Tensor d = h.to(Device::cuda);
  Tensor d2 = d.clone();
  expect_same_bits(d2, h, "H2D + D2D + D2H");
  Tensor part = d.slice0(2, 4);  // a view with an offset
  expect_same_bits(part, h.slice0(2, 4), "D2H of a view");
  Tensor dst = Tensor::zeros({2, 123}, DType::f32, Device::cuda);
  dst.copy_from(h.slice0(1, 3));
  expect_same_bits(dst, h.slice0(1, 3), "H2D into existing");
  EXPECT_EQ(Tensor::scalar(3.5f, Device::cuda).item(), 3.5f);
}

TEST(CudaBackend, DeferredIndexErrorsSurfaceAtSync) {
  SK_NEED_CUDA();
  Backend& be = backend_for(Device::cuda);
  cuda_backend().set_sync_index_checks(false);
  Tensor table = randt({10, 4}, 1).to(Device::cuda);
  Tensor bad = Tensor::from_vector<std::int64_t>({1, 10, 2}, {3}).to(Device::cuda);
  Tensor y = be.embedding(table, bad);  // queued; no throw yet
  EXPECT_THROW(be.synchronize(), Error);
  be.synchronize();  // the flag was cleared: the backend keeps working
  Tensor x = randt({2, 5, 3}, 2).to(Device::cuda);
  Tensor idx = Tensor::from_vector<std::int64_t>({0, 5, 1, -1}, {2, 2}).to(Device::cuda);
  Tensor g = be.gather_rows(x, idx);
  EXPECT_THROW(g.to_vector<float>(), Error);  // reported by the next copy to the host
  Tensor good = Tensor::from_vector<std::int64_t>({0, 4, 1, 2}, {2, 2}).to(Device::cuda);
  EXPECT_NO_THROW(be.gather_rows(x, good).to_vector<float>());
  // Synchronous mode: the op itself throws, as on the CPU backend.
  cuda_backend().set_sync_index_checks(true);
  EXPECT_THROW(be.embedding(table, bad), Error);
  EXPECT_THROW(be.gather_rows(x, idx), Error);
  EXPECT_NO_THROW(be.gather_rows(x, good));
  cuda_backend().set_sync_index_checks(false);
}

TEST(CudaBackend, StreamAndDevice) {
  SK_NEED_CUDA();
  CudaBackend& be = cuda_backend();
  EXPECT_NE(be.stream(), nullptr);
  EXPECT_GE(be.device_ordinal(), 0);
  EXPECT_NO_THROW(be.set_device(be.device_ordinal()));  // same device: allowed after first use
}
#endif  // SK_TEST_CUDA

}  // namespace
}  // namespace sk
