// cuda_backend.h — CudaBackend: the GPU implementation of sk::Backend (host code, g++).
//
// * GEMM goes to cuBLAS (f32: cublasSgemmStridedBatched; bf16 inputs: cublasGemmStridedBatchedEx
//   with fp32 accumulation, f32 or bf16 output); every other op is one of our kernels, reached
//   through the plain-pointer launchers of launchers.h.
// * One stream: every op, copy and cuBLAS call is queued on stream(), a blocking stream (it
//   orders itself with the legacy default stream, so code that uses stream 0 stays correct).
//   Ops are asynchronous; copy_bytes to the host and synchronize() wait for the stream.
// * Memory comes from a caching allocator (allocator.h): no cudaMalloc in the steady state.
// * Nothing touches the GPU until the first use. The device is the one current on the first
//   using thread, or the one given to set_device() before that (multi-GPU ranks call it with
//   local_rank % devices). Any thread that uses the backend is switched to that device.
// * Index errors (ids or row indices out of range) are detected on the device without stalling
//   the stream and reported as sk::Error at the next synchronisation point: synchronize() or a
//   copy to the host (Tensor::to_vector, item). cross_entropy checks its targets at once (it
//   reads the row count back anyway). set_sync_index_checks(true), or SK_CUDA_SYNC_INDEX_CHECKS=1
//   in the environment, makes every index op wait and throw at once, like the CPU backend (slower:
//   for debugging and for tests that expect the throw from the op itself).
// This header does not include CUDA headers; CUstream_st* is cudaStream_t.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "model/core/backend.h"

struct CUstream_st;    // cudaStream_t is CUstream_st*
struct cublasContext;  // cublasHandle_t is cublasContext*

namespace sk {

namespace cu {
class CachingAllocator;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend();
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda; }
  const char* name() const override { return "cuda"; }

  void* allocate(std::size_t bytes) override;
  void deallocate(void* p, std::size_t bytes) override;
  void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t n) override;
  void synchronize() override;
  std::size_t bytes_in_use() const override;
  std::size_t peak_bytes() const override;
  std::string device_model() override;
  std::size_t memory_capacity() override;
  void* native_stream() override { return stream(); }

  // ---- CUDA specifics ----
  // Selects the GPU; only before the first use (else sk::Error unless it is the same device).
  void set_device(int ordinal);
  int device_ordinal();                // initialises the backend if needed
  CUstream_st* stream();               // the stream every op is queued on
  cu::CachingAllocator& allocator();
  void empty_cache();                  // returns cached blocks to the driver
  // f32 GEMMs may use TF32 tensor cores (faster, ~1e-3 relative error). Default off: exact fp32.
  void set_allow_tf32(bool allow);
  // Index ops (embedding, gather/scatter rows, cross-entropy backward) synchronise and throw at once.
  void set_sync_index_checks(bool on) { sync_index_checks_.store(on, std::memory_order_relaxed); }

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

 private:
  struct State;
  State& st();  // initialises on first use and makes the calling thread's device current
  void init();
  // Queues the deferred-error read, waits for the stream, throws sk::Error if an index op flagged one.
  void sync_and_check(State& s);
  // Device -> host copy of n bytes, then sync_and_check.
  void copy_to_host(State& s, void* dst, const void* src, std::size_t n);
  // After an index op: waits and throws at once when sync_index_checks_ is on.
  void after_index_op(State& s);
  void gemm_strided(State& s, const void* a, const void* b, void* c, bool bf16_in, bool bf16_out, const GemmDesc& d);

  std::mutex init_mu_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<State> state_;
  int requested_device_ = -1;
  bool allow_tf32_ = false;
  std::atomic<bool> sync_index_checks_{false};
};

}  // namespace sk
