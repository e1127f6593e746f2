// gemm.cpp — C = alpha op(A) op(B) + beta C through OpenBLAS cblas_sgemm (row-major).
// f32 inputs go straight to sgemm. bf16 inputs are widened to f32 (exact) and multiplied with fp32
// accumulation; a bf16 C is widened before (when beta != 0) and rounded back after.
//
// Threading: the backend's OpenMP team does all the parallel work, OpenBLAS runs single-threaded
// inside it (cpu::threads_init() pins OpenBLAS to one thread). Batches are split across threads
// (one sgemm per matrix); a single large product is split into row or column panels of C. On a
// machine with few cores this avoids a second, spinning thread pool (OpenBLAS's pthreads) fighting
// the OpenMP workers for the same cores between ops, and small batched products (attention) no
// longer pay OpenBLAS's per-call thread hand-off.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

namespace {

void widen(std::vector<float>& out, const void* src, std::int64_t n) {
  out.resize(static_cast<std::size_t>(n));
  const auto* s = static_cast<const std::uint16_t*>(src);
  float* o = out.data();
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) o[i] = bf16_to_f32(s[i]);
}

// Products below this many multiply-adds run on one thread.
constexpr std::int64_t kGemmParallelMin = 1 << 18;

// The product's description (Backend::GemmDesc, which is protected, copied in do_gemm).
struct Desc {
  bool trans_a, trans_b;
  std::int64_t M, N, K, batch;
  std::int64_t stride_a, stride_b, stride_c;
  float alpha, beta;
};

struct Mat {
  const float* a;
  const float* b;
  float* c;
};

void sgemm(const Desc& d, std::int64_t M, std::int64_t N, const float* a, const float* b, float* c) {
  const auto lda = static_cast<blasint>(d.trans_a ? d.M : d.K);
  const auto ldb = static_cast<blasint>(d.trans_b ? d.K : d.N);
  const auto ldc = static_cast<blasint>(d.N);
  cblas_sgemm(CblasRowMajor, d.trans_a ? CblasTrans : CblasNoTrans, d.trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(d.K), d.alpha, a, lda, b, ldb,
              d.beta, c, ldc);
}

// One [M, N] product split into `parts` panels of C (rows when M is the larger side, else columns),
// panel p computed by thread p. Row panels of C take rows of op(A); column panels take columns of
// op(B). Each element's K-sum is the same single-threaded kernel's, whatever the split.
void panel(const Desc& d, const Mat& m, int p, int parts) {
  const std::int64_t lda = d.trans_a ? d.M : d.K, ldb = d.trans_b ? d.K : d.N;
  if (d.M >= d.N) {
    const std::int64_t step = (d.M + parts - 1) / parts, m0 = std::min<std::int64_t>(d.M, p * step),
                       m1 = std::min<std::int64_t>(d.M, m0 + step);
    if (m1 <= m0) return;
    const float* a = d.trans_a ? m.a + m0 : m.a + m0 * lda;
    sgemm(d, m1 - m0, d.N, a, m.b, m.c + m0 * d.N);
  } else {
    const std::int64_t step = (d.N + parts - 1) / parts, n0 = std::min<std::int64_t>(d.N, p * step),
                       n1 = std::min<std::int64_t>(d.N, n0 + step);
    if (n1 <= n0) return;
    const float* b = d.trans_b ? m.b + n0 * ldb : m.b + n0;
    sgemm(d, d.M, n1 - n0, m.a, b, m.c + n0);
  }
}

void gemm_f32(const Desc& d0, const float* pa, const float* pb, float* pc) {
  Desc d = d0;
  if (d.stride_b == 0 && !d.trans_a && d.batch > 1) {
    // Shared B and row-major A [batch*M, K]: one big GEMM.
    d.M *= d.batch;
    d.batch = 1;
  }
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const std::int64_t work = d.batch * d.M * d.N * d.K;
  if (threads <= 1 || work < kGemmParallelMin) {
    for (std::int64_t i = 0; i < d.batch; ++i)
      sgemm(d, d.M, d.N, pa + i * d.stride_a, pb + i * d.stride_b, pc + i * d.stride_c);
    return;
  }
  if (d.batch >= threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t i = 0; i < d.batch; ++i)
      sgemm(d, d.M, d.N, pa + i * d.stride_a, pb + i * d.stride_b, pc + i * d.stride_c);
    return;
  }
  // Fewer matrices than threads: split each matrix into panels, all threads on one matrix at a time.
#pragma omp parallel num_threads(threads)
  {
    const int p = omp_get_thread_num(), parts = omp_get_num_threads();
    for (std::int64_t i = 0; i < d.batch; ++i) {
      panel(d, Mat{pa + i * d.stride_a, pb + i * d.stride_b, pc + i * d.stride_c}, p, parts);
#pragma omp barrier
    }
  }
}

}  // namespace

void cpu::threads_init() {
#ifdef OPENBLAS_VERSION
  openblas_set_num_threads(1);
#endif
}

void CpuBackend::do_gemm(Tensor& c, const Tensor& a, const Tensor& b, const GemmDesc& d) {
  const bool bf16_in = a.dtype() == DType::bf16;
  const bool bf16_out = c.dtype() == DType::bf16;
  std::vector<float> wa, wb, wc;
  const float* pa;
  const float* pb;
  float* pc;
  if (bf16_in) {
    widen(wa, a.raw(), a.numel());
    widen(wb, b.raw(), b.numel());
    pa = wa.data();
    pb = wb.data();
  } else {
    pa = f32(a);
    pb = f32(b);
  }
  const std::int64_t c_elems = d.batch * d.M * d.N;
  if (bf16_out) {
    if (d.beta != 0.f) widen(wc, c.raw(), c_elems);
    else wc.assign(static_cast<std::size_t>(c_elems), 0.f);
    pc = wc.data();
  } else {
    pc = f32(c);
  }

  if (d.K == 0) {
    // op(A) op(B) is the zero matrix: C = beta C (BLAS rejects lda = 0, so do it here).
    for (std::int64_t i = 0; i < c_elems; ++i) pc[i] = d.beta == 0.f ? 0.f : d.beta * pc[i];
  } else {
    gemm_f32(Desc{d.trans_a, d.trans_b, d.M, d.N, d.K, d.batch, d.stride_a, d.stride_b, d.stride_c, d.alpha, d.beta},
             pa, pb, pc);
  }

  if (bf16_out) {
    auto* out = static_cast<std::uint16_t*>(c.raw());
#pragma omp parallel for if (c_elems > kParallelMin) schedule(static)
    for (std::int64_t i = 0; i < c_elems; ++i) out[i] = f32_to_bf16(pc[i]);
  }
}

}  // namespace sk
