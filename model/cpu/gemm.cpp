// gemm.cpp — C = alpha op(A) op(B) + beta C through OpenBLAS cblas_sgemm (row-major).
// f32 inputs go straight to sgemm. bf16 inputs are widened to f32 (exact) and multiplied with fp32
// accumulation; a bf16 C is widened before (when beta != 0) and rounded back after.
#include <cblas.h>

#include <cstring>
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

}  // namespace

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
    const CBLAS_TRANSPOSE ta = d.trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = d.trans_b ? CblasTrans : CblasNoTrans;
    const auto lda = static_cast<blasint>(d.trans_a ? d.M : d.K);
    const auto ldb = static_cast<blasint>(d.trans_b ? d.K : d.N);
    const auto ldc = static_cast<blasint>(d.N);
    if (d.stride_b == 0 && !d.trans_a && d.batch > 1) {
      // Shared B and row-major A [batch*M, K]: one big GEMM.
      cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(d.batch * d.M), static_cast<blasint>(d.N),
                  static_cast<blasint>(d.K), d.alpha, pa, lda, pb, ldb, d.beta, pc, ldc);
    } else {
      for (std::int64_t i = 0; i < d.batch; ++i) {
        cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(d.M), static_cast<blasint>(d.N),
                    static_cast<blasint>(d.K), d.alpha, pa + i * d.stride_a, lda, pb + i * d.stride_b, ldb, d.beta,
                    pc + i * d.stride_c, ldc);
      }
    }
  }

  if (bf16_out) {
    auto* out = static_cast<std::uint16_t*>(c.raw());
#pragma omp parallel for if (c_elems > kParallelMin) schedule(static)
    for (std::int64_t i = 0; i < c_elems; ++i) out[i] = f32_to_bf16(pc[i]);
  }
}

}  // namespace sk
