// cpu_backend.h — CpuBackend: the host implementation of sk::Backend.
// GEMM goes to OpenBLAS (cblas_sgemm); everything else is plain loops, parallelised with OpenMP
// where the size justifies it. Each do_* hook lives in the file named after its op family:
//   cpu_backend.cpp (memory, fill, cast, rand, axpy, where, masked_fill), gemm.cpp,
//   elementwise.cpp, reduce.cpp, softmax.cpp, xent.cpp, layernorm.cpp, embedding.cpp,
//   shape.cpp (permute, narrow/concat, roll), index.cpp (gather/scatter rows, topk, argmax),
//   dropout.cpp, adamw.cpp, fused_attention.cpp (attention / attention_backward).
// The hooks receive tensors already checked by backend.cpp (shapes, dtypes, devices); the only
// checks repeated here are data-dependent ones (index values in range).
#pragma once
#include <atomic>
#include <cstddef>

#include "model/core/backend.h"

namespace sk {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  const char* name() const override { return "cpu"; }

  void* allocate(std::size_t bytes) override;
  void deallocate(void* p, std::size_t bytes) override;
  void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t n) override;
  std::size_t bytes_in_use() const override { return in_use_.load(std::memory_order_relaxed); }
  std::size_t peak_bytes() const override { return peak_.load(std::memory_order_relaxed); }
  std::size_t memory_capacity() override;

 protected:
  void do_fill(Tensor& x, float value) override;
  void do_cast(Tensor& y, const Tensor& x) override;
  void do_rand_uniform(Tensor& y, RngKey key) override;
  void do_gemm(Tensor& c, const Tensor& a, const Tensor& b, const GemmDesc& d) override;
  void do_binary(Tensor& y, const Tensor& a, const Shape& as, const Tensor& b, const Shape& bs, BinaryOp op) override;
  void do_binary_backward(Tensor& da_full, Tensor& db_full, const Tensor& dy, const Tensor& a, const Shape& as,
                          const Tensor& b, const Shape& bs, BinaryOp op) override;
  void do_unary(Tensor& y, const Tensor& x, UnaryOp op, float alpha) override;
  void do_unary_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, UnaryOp op,
                         float alpha) override;
  void do_axpy(Tensor& y, const Tensor& x, float alpha) override;
  void do_where(Tensor& y, const Tensor& mask, const Tensor& a, const Tensor& b) override;
  void do_masked_fill(Tensor& y, const Tensor& x, const Tensor& mask, float value) override;
  void do_reduce(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                 ReduceOp op) override;
  void do_reduce_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, std::int64_t outer,
                          std::int64_t n, std::int64_t inner, ReduceOp op) override;
  void do_logsumexp(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner) override;
  void do_logsumexp_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, std::int64_t outer,
                             std::int64_t n, std::int64_t inner) override;
  void do_cumsum(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                 bool reverse) override;
  void do_softmax(Tensor& y, const Tensor& x, const Tensor& mask, float scale, float fill) override;
  void do_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, const Tensor& mask, float scale) override;
  void do_log_softmax(Tensor& y, const Tensor& x) override;
  void do_log_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y) override;
  void do_cross_entropy(Tensor& loss, Tensor& lse, std::int64_t& count, const Tensor& logits, const Tensor& targets,
                        std::int64_t ignore_index) override;
  void do_cross_entropy_backward(Tensor& dlogits, float scale, const Tensor& logits, const Tensor& targets,
                                 const Tensor& lse, std::int64_t ignore_index) override;
  void do_layernorm(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                    float eps) override;
  void do_layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dy, const Tensor& x, const Tensor& w,
                             const Tensor& mean, const Tensor& rstd) override;
  void do_embedding(Tensor& y, const Tensor& table, const Tensor& ids) override;
  void do_embedding_backward(Tensor& dtable, const Tensor& dy, const Tensor& ids) override;
  void do_permute(Tensor& y, const Tensor& x, const std::vector<int>& perm) override;
  void do_narrow_copy(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t nx, std::int64_t ny,
                      std::int64_t inner, std::int64_t start, bool extract, bool accumulate) override;
  void do_roll(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
               std::int64_t shift) override;
  void do_gather_rows(Tensor& y, const Tensor& x, const Tensor& idx) override;
  void do_scatter_add_rows(Tensor& dx, const Tensor& dy, const Tensor& idx) override;
  void do_topk(Tensor& values, Tensor& indices, const Tensor& x, std::int64_t k) override;
  void do_argmax(Tensor& idx, const Tensor& x) override;
  void do_dropout(Tensor& y, const Tensor& x, float p, RngKey key) override;
  void do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1, float beta2, float eps,
                float weight_decay, std::int64_t step) override;
  // ---- fused attention (model/cpu/fused_attention.cpp) ----
  void do_attention(Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep,
                    const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop, RngKey key) override;
  void do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& keep, const Tensor& q_keep, const Tensor& k_keep,
                             float scale, float p_drop, RngKey key) override;

 private:
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> peak_{0};
};

}  // namespace sk
