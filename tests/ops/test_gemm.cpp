// test_gemm.cpp — GEMM: all four transpose combinations, odd sizes, batched, shared B, alpha/beta
// accumulation, bf16 inputs (fp32 accumulation) with f32 or bf16 output; and the matmul backward
// formulas (dA, dB through gemm with the right transposes) vs the reference and finite differences.
#include <cmath>

#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

struct Dims {
  std::int64_t M, N, K;
};
const Dims kDims[] = {{7, 13, 5}, {1, 1, 1}, {67, 129, 45}, {1, 5000, 3}, {33, 1, 17}};

Shape with(const Shape& batch, std::int64_t r, std::int64_t c) {
  Shape s = batch;
  s.push_back(r);
  s.push_back(c);
  return s;
}

// fp32 accumulation of K products of O(1) numbers: the error is a few ulps of sqrt(K)-sized sums,
// bounded well below 2e-6 * K. A TF32 or bf16 shortcut in an "f32" GEMM (~1e-3 relative) fails.
double gemm_atol(std::int64_t K) { return 2e-6 * static_cast<double>(K) + 1e-6; }

TEST_P(Ops, GemmF32AllTransposesBatchedSharedBeta) {
  const Shape batches[] = {{}, {3}, {2, 3}};
  for (const auto& d : kDims)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const auto& batch : batches)
          for (bool shared : {false, true}) {
            if (shared && batch.empty()) continue;
            if (d.M * d.N * d.K * shape_numel(batch) > 3'000'000) continue;  // keep the naive reference cheap
            const float alpha = 0.7f, beta = shared ? 1.3f : (ta ? -0.5f : 0.f);
            Shape as = with(batch, ta ? d.K : d.M, ta ? d.M : d.K);
            Shape bs = with(shared ? Shape{} : batch, tb ? d.N : d.K, tb ? d.K : d.N);
            Shape cs = with(batch, d.M, d.N);
            auto a = randn(shape_numel(as)), b = randn(shape_numel(bs)), c0 = randn(shape_numel(cs));
            Tensor c = T(c0, cs);
            be().gemm(c, T(a, as), T(b, bs), ta, tb, alpha, beta);
            Vec ref = skref::gemm(D(a), D(b), D(c0), ta, tb, shape_numel(batch), d.M, d.N, d.K, shared, alpha, beta);
            EXPECT_TRUE(close(D(c), ref, 1e-5, gemm_atol(d.K)))
                << "M" << d.M << " N" << d.N << " K" << d.K << " ta " << ta << " tb " << tb << " batch "
                << shape_str(batch) << " shared " << shared << " beta " << beta;
          }
}

TEST_P(Ops, GemmBetaZeroIgnoresC) {
  // beta == 0 must not read C (matmul hands gemm uninitialised memory): NaN in C stays out.
  auto a = randn(6 * 4), b = randn(4 * 5);
  Tensor c = T(std::vector<float>(30, NAN), {6, 5});
  be().gemm(c, T(a, {6, 4}), T(b, {4, 5}), false, false, 1.f, 0.f);
  EXPECT_TRUE(close(D(c), skref::gemm(D(a), D(b), Vec(30, 0.0), false, false, 1, 6, 5, 4, false, 1, 0), 1e-5, 1e-5));
}

TEST_P(Ops, MatmulShapes) {
  auto a = randn(2 * 3 * 7 * 5), b = randn(5 * 11);
  Tensor c = be().matmul(T(a, {2, 3, 7, 5}), T(b, {5, 11}), false, false, 2.f);
  EXPECT_EQ(c.shape(), (Shape{2, 3, 7, 11}));
  EXPECT_TRUE(close(D(c), skref::gemm(D(a), D(b), {}, false, false, 6, 7, 11, 5, true, 2, 0), 1e-5, gemm_atol(5)));
  // C may be given in another shape with the same size and last dim N (e.g. [B*T, N] for [B, T, N]).
  Tensor c2 = Tensor::zeros({42, 11}, DType::f32, dev());
  be().gemm(c2, T(a, {2, 3, 7, 5}), T(b, {5, 11}), false, false, 2.f, 0.f);
  EXPECT_TRUE(close(D(c2), D(c), 0, 0));
}

TEST_P(Ops, GemmBf16) {
  for (const auto& d : kDims)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (DType out : {DType::f32, DType::bf16}) {
          const std::int64_t batch = 2;
          const float alpha = 1.f, beta = out == DType::bf16 ? 0.5f : 1.f;
          Shape as{batch, ta ? d.K : d.M, ta ? d.M : d.K}, bs{batch, tb ? d.N : d.K, tb ? d.K : d.N},
              cs{batch, d.M, d.N};
          std::vector<std::uint16_t> ab, bb, cb;
          Vec av, bv, cv;
          for (float v : randn(shape_numel(as))) ab.push_back(f32_to_bf16(v)), av.push_back(bf16_to_f32(ab.back()));
          for (float v : randn(shape_numel(bs))) bb.push_back(f32_to_bf16(v)), bv.push_back(bf16_to_f32(bb.back()));
          for (float v : randn(shape_numel(cs))) cb.push_back(f32_to_bf16(v)), cv.push_back(bf16_to_f32(cb.back()));
          Tensor c = out == DType::bf16 ? Tensor::from_vector(cb, cs, dev()) : T(std::vector<float>(cv.begin(), cv.end()), cs);
          be().gemm(c, Tensor::from_vector(ab, as, dev()), Tensor::from_vector(bb, bs, dev()), ta, tb, alpha, beta);
          // Reference on the exact bf16 input values: only fp32 accumulation error is allowed.
          Vec ref = skref::gemm(av, bv, cv, ta, tb, batch, d.M, d.N, d.K, false, alpha, beta);
          if (out == DType::f32) {
            EXPECT_TRUE(close(D(c), ref, 1e-5, gemm_atol(d.K))) << "bf16 -> f32 M" << d.M << " N" << d.N << " K" << d.K;
          } else {
            // One rounding to bf16 at the end: within one bf16 ulp (2^-7 relative) of the exact result.
            Vec got;
            for (auto h : c.to_vector<std::uint16_t>()) got.push_back(bf16_to_f32(h));
            EXPECT_TRUE(close(got, ref, 1.0 / 128, gemm_atol(d.K))) << "bf16 -> bf16 M" << d.M << " N" << d.N;
          }
        }
}

TEST_P(Ops, GemmBf16RoundsLikeCast) {
  // bf16 output is the round-to-nearest-even of the fp32 result: exactly what cast(f32 -> bf16) does.
  auto a = randn(9 * 6), b = randn(6 * 10);
  std::vector<std::uint16_t> ab, bb;
  for (float v : a) ab.push_back(f32_to_bf16(v));
  for (float v : b) bb.push_back(f32_to_bf16(v));
  Tensor A = Tensor::from_vector(ab, {9, 6}, dev()), B = Tensor::from_vector(bb, {6, 10}, dev());
  Tensor c32 = be().matmul(A, B);
  Tensor c16 = Tensor::empty({9, 10}, DType::bf16, dev());
  be().gemm(c16, A, B, false, false, 1.f, 0.f);
  EXPECT_EQ(c16.to_vector<std::uint16_t>(), be().cast(c32, DType::bf16).to_vector<std::uint16_t>());
}

// Backward of C = op(A) op(B) with cotangent W = dC:
//   dA = W op(B)^T (stored transposed when ta), dB = op(A)^T W (stored transposed when tb),
// each one gemm with the transposes below.
void gemm_grads(Backend& be, const Tensor& A, const Tensor& B, const Tensor& W, bool ta, bool tb, Tensor& dA, Tensor& dB) {
  dA = ta ? be.matmul(B, W, tb, true) : be.matmul(W, B, false, !tb);
  dB = tb ? be.matmul(W, A, true, ta) : be.matmul(A, W, !ta, false);
}

TEST_P(Ops, GemmBackwardAllTransposes) {
  const std::int64_t M = 4, N = 5, K = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Shape as = ta ? Shape{K, M} : Shape{M, K}, bs = tb ? Shape{N, K} : Shape{K, N};
      auto a = randn(M * K), b = randn(K * N), w = randn(M * N);
      Tensor dA, dB;
      gemm_grads(be(), T(a, as), T(b, bs), T(w, {M, N}), ta, tb, dA, dB);
      EXPECT_EQ(dA.shape(), as);
      EXPECT_EQ(dB.shape(), bs);
      // float64 analytic reference, element by element from the definition.
      Vec ra(static_cast<std::size_t>(M * K), 0.0), rb(static_cast<std::size_t>(K * N), 0.0);
      for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j)
          for (std::int64_t k = 0; k < K; ++k) {
            std::size_t ia = static_cast<std::size_t>(ta ? k * M + i : i * K + k);
            std::size_t ib = static_cast<std::size_t>(tb ? j * K + k : k * N + j);
            double wij = w[static_cast<std::size_t>(i * N + j)];
            ra[ia] += wij * b[ib];
            rb[ib] += wij * a[ia];
          }
      EXPECT_TRUE(close(D(dA), ra, 1e-5, 1e-5)) << "dA ta " << ta << " tb " << tb;
      EXPECT_TRUE(close(D(dB), rb, 1e-5, 1e-5)) << "dB ta " << ta << " tb " << tb;
      auto fa = [&](const std::vector<float>& v) { return F(be().matmul(T(v, as), T(b, bs), ta, tb)); };
      auto fb = [&](const std::vector<float>& v) { return F(be().matmul(T(a, as), T(v, bs), ta, tb)); };
      EXPECT_TRUE(fd_ok(skref::check_fd(fa, a, D(w), D(dA)))) << "dA ta " << ta << " tb " << tb;
      EXPECT_TRUE(fd_ok(skref::check_fd(fb, b, D(w), D(dB)))) << "dB ta " << ta << " tb " << tb;
    }
}

TEST_P(Ops, GemmBackwardBatchedSharedB) {
  // A [2, 3, M, K] @ B [K, N] (shared): dA is a batched gemm against the shared B, and dB sums over
  // the batch, which is one gemm on A viewed as [batch*M, K] — with beta = 1 accumulating into an
  // existing gradient.
  const std::int64_t M = 3, N = 4, K = 5, batch = 6;
  auto a = randn(batch * M * K), b = randn(K * N), w = randn(batch * M * N), g0 = randn(K * N);
  Tensor A = T(a, {2, 3, M, K}), B = T(b, {K, N}), W = T(w, {2, 3, M, N});
  Tensor dA = be().matmul(W, B, false, true);
  Tensor dB = T(g0, {K, N});
  be().gemm(dB, A.reshape({batch * M, K}), W.reshape({batch * M, N}), true, false, 1.f, 1.f);
  auto fa = [&](const std::vector<float>& v) { return F(be().matmul(T(v, {2, 3, M, K}), B)); };
  auto fb = [&](const std::vector<float>& v) { return F(be().matmul(A, T(v, {K, N}))); };
  EXPECT_TRUE(fd_ok(skref::check_fd(fa, a, D(w), D(dA)))) << "dA";
  Vec dBv = D(dB);
  for (std::size_t i = 0; i < dBv.size(); ++i) dBv[i] -= g0[i];  // the accumulated part
  EXPECT_TRUE(fd_ok(skref::check_fd(fb, b, D(w), dBv))) << "dB";
  // and against the reference: sum over the batch of A_b^T W_b
  Vec ref = skref::gemm(D(a), D(w), {}, true, false, 1, K, N, batch * M, false, 1, 0);
  EXPECT_TRUE(close(dBv, ref, 1e-4, 1e-4));
}

}  // namespace
}  // namespace sk::test
