// cuda_backend.cpp — CudaBackend (cuda_backend.h): device state, memory, copies, cuBLAS GEMM, and
// the do_* hooks, each a thin call of a launcher (launchers.h) on already-validated tensors.
// Also defines sk::register_cuda_backend / sk::cuda_compiled (model/backends.h) for CUDA builds.
#include "model/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "model/backends.h"
#include "model/cuda/allocator.h"
#include "model/cuda/cublas_api.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/cuda_error.h"
#include "model/cuda/launchers.h"

namespace sk {

// The kernels take op codes as ints: keep the numbering in step with backend.h.
static_assert(static_cast<int>(BinaryOp::add) == cu::kAdd && static_cast<int>(BinaryOp::sub) == cu::kSub &&
              static_cast<int>(BinaryOp::mul) == cu::kMul && static_cast<int>(BinaryOp::div) == cu::kDiv &&
              static_cast<int>(BinaryOp::max) == cu::kMax && static_cast<int>(BinaryOp::min) == cu::kMin);
static_assert(static_cast<int>(UnaryOp::neg) == cu::kNeg && static_cast<int>(UnaryOp::exp) == cu::kExp &&
              static_cast<int>(UnaryOp::log) == cu::kLog && static_cast<int>(UnaryOp::sqrt) == cu::kSqrt &&
              static_cast<int>(UnaryOp::rsqrt) == cu::kRsqrt && static_cast<int>(UnaryOp::square) == cu::kSquare &&
              static_cast<int>(UnaryOp::abs) == cu::kAbs && static_cast<int>(UnaryOp::relu) == cu::kRelu &&
              static_cast<int>(UnaryOp::leaky_relu) == cu::kLeakyRelu && static_cast<int>(UnaryOp::gelu) == cu::kGelu &&
              static_cast<int>(UnaryOp::scale) == cu::kScale && static_cast<int>(UnaryOp::add_scalar) == cu::kAddScalar &&
              static_cast<int>(UnaryOp::pow_scalar) == cu::kPowScalar &&
              static_cast<int>(UnaryOp::sigmoid) == cu::kSigmoid && static_cast<int>(UnaryOp::tanh) == cu::kTanh);
static_assert(static_cast<int>(ReduceOp::sum) == cu::kSum && static_cast<int>(ReduceOp::mean) == cu::kMean &&
              static_cast<int>(ReduceOp::max) == cu::kMaxReduce);

namespace {

constexpr std::size_t kCublasWorkspace = 32u << 20;  // cuBLAS' recommendation for Hopper
constexpr std::int64_t kMaxGemmBatch = 65535;          // batches go to cuBLAS in chunks of at most this

thread_local int t_device = -1;  // the device this thread last made current for the backend

float* f32(Tensor& t) { return static_cast<float*>(t.raw()); }
const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
const std::int64_t* i64(const Tensor& t) { return static_cast<const std::int64_t*>(t.raw()); }
const std::uint8_t* u8(const Tensor& t) { return static_cast<const std::uint8_t*>(t.raw()); }
float* f32_or_null(Tensor& t) { return t.defined() ? f32(t) : nullptr; }
const float* f32_or_null(const Tensor& t) { return t.defined() ? f32(t) : nullptr; }
const std::uint8_t* u8_or_null(const Tensor& t) { return t.defined() ? u8(t) : nullptr; }
std::int64_t last_dim(const Tensor& t) { return t.ndim() ? t.dim(-1) : 1; }
bool fits_int(std::int64_t v) { return v >= 0 && v <= INT_MAX; }

// Temporary device memory from the caching allocator, returned when the scope ends. Returning it
// while kernels that use it are still queued is safe: its next user runs on the same stream.
class Scratch {
 public:
  Scratch(cu::CachingAllocator& a, std::size_t bytes) : a_(a), p_(bytes ? a.allocate(bytes) : nullptr) {}
  ~Scratch() { a_.deallocate(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return p_; }

 private:
  cu::CachingAllocator& a_;
  void* p_;
};

// Broadcast descriptor with dims merged: size-1 output dims are dropped and neighbouring dims that
// are broadcast the same way in both inputs become one.
cu::BcastDesc make_bcast(const Shape& out, const Shape& as, const Shape& bs) {
  struct Dim {
    std::int64_t n;
    bool ba, bb;
  };
  std::vector<Dim> dims;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;
    const Dim d{out[i], as[i] == 1, bs[i] == 1};
    if (!dims.empty() && dims.back().ba == d.ba && dims.back().bb == d.bb) dims.back().n *= d.n;
    else dims.push_back(d);
  }
  cu::BcastDesc desc;
  if (dims.empty()) {  // one element
    desc.rank = 1;
    desc.out[0] = 1;
    desc.sa[0] = desc.sb[0] = 1;
    return desc;
  }
  SK_CHECK(dims.size() <= static_cast<std::size_t>(cu::kMaxBcastRank), "broadcast of ", shape_str(as), " and ",
           shape_str(bs), " needs ", dims.size(), " separate dims; the CUDA backend supports ", cu::kMaxBcastRank);
  desc.rank = static_cast<int>(dims.size());
  std::int64_t ra = 1, rb = 1;
  for (int k = desc.rank - 1; k >= 0; --k) {
    const Dim& d = dims[static_cast<std::size_t>(k)];
    desc.out[k] = d.n;
    desc.sa[k] = d.ba ? 0 : ra;
    desc.sb[k] = d.bb ? 0 : rb;
    if (!d.ba) ra *= d.n;
    if (!d.bb) rb *= d.n;
  }
  return desc;
}

std::string deferred_error_message(int bits) {
  std::string what;
  auto add = [&](int bit, const char* s) {
    if (bits & bit) what += (what.empty() ? "" : "; ") + std::string(s);
  };
  add(cu::kErrEmbedding, "embedding: an id is outside the table [0, V)");
  add(cu::kErrEmbeddingBackward, "embedding_backward: an id is outside the table [0, V)");
  add(cu::kErrGatherRows, "gather_rows: an index is outside [0, R)");
  add(cu::kErrScatterAddRows, "scatter_add_rows: an index is outside [0, R)");
  add(cu::kErrCrossEntropyBackward,
      "cross_entropy_backward: a target is outside the vocabulary and is not ignore_index");
  return cat(what, " (found on the GPU by an earlier op and reported at this synchronisation; the bad entries "
                   "were skipped or produced zeros)");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
struct CudaBackend::State {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_ws = nullptr;
  int* dev_err = nullptr;  // deferred index-error bits (launchers.h)
  std::unique_ptr<cu::CachingAllocator> alloc;
};

CudaBackend::CudaBackend() {
  const char* e = std::getenv("SK_CUDA_SYNC_INDEX_CHECKS");
  sync_index_checks_.store(e && std::strcmp(e, "1") == 0, std::memory_order_relaxed);
}

CudaBackend::~CudaBackend() {
  // The registered instance lives for the whole process (never destroyed); this serves
  // stand-alone instances. Errors are ignored: destructors must not throw.
  if (!state_) return;
  State& s = *state_;
  if (cudaSetDevice(s.device) == cudaSuccess && cudaStreamSynchronize(s.stream) == cudaSuccess) {
    if (s.cublas) (void)cublas::api().destroy(s.cublas);
    (void)cudaFree(s.cublas_ws);
    (void)cudaFree(s.dev_err);
    s.alloc.reset();
    (void)cudaStreamDestroy(s.stream);
  }
  (void)cudaGetLastError();
}

void CudaBackend::init() {
  std::lock_guard<std::mutex> lock(init_mu_);
  if (ready_.load(std::memory_order_acquire)) return;
  auto s = std::make_unique<State>();
  int dev = requested_device_;
  if (dev < 0) CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaSetDevice(dev));
  s->device = dev;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamDefault));
  s->alloc = std::make_unique<cu::CachingAllocator>(dev);
  CUDA_CHECK(cudaMalloc(&s->dev_err, sizeof(int)));
  CUDA_CHECK(cudaMemsetAsync(s->dev_err, 0, sizeof(int), s->stream));
  CUBLAS_CHECK(cublas::api().create(&s->cublas));
  CUBLAS_CHECK(cublas::api().set_stream(s->cublas, s->stream));  // (resets the workspace: set it after)
  CUDA_CHECK(cudaMalloc(&s->cublas_ws, kCublasWorkspace));
  CUBLAS_CHECK(cublas::api().set_workspace(s->cublas, s->cublas_ws, kCublasWorkspace));
  CUBLAS_CHECK(cublas::api().set_math_mode(s->cublas, allow_tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  CUDA_CHECK(cudaStreamSynchronize(s->stream));
  state_ = std::move(s);
  t_device = dev;
  ready_.store(true, std::memory_order_release);
}

CudaBackend::State& CudaBackend::st() {
  if (!ready_.load(std::memory_order_acquire)) init();
  State& s = *state_;
  if (t_device != s.device) {
    CUDA_CHECK(cudaSetDevice(s.device));
    t_device = s.device;
  }
  return s;
}

void CudaBackend::set_device(int ordinal) {
  int n = 0;
  CUDA_CHECK(cudaGetDeviceCount(&n));
  SK_CHECK(ordinal >= 0 && ordinal < n, "CUDA device ", ordinal, " does not exist (", n, " visible)");
  std::lock_guard<std::mutex> lock(init_mu_);
  SK_CHECK(!ready_.load(std::memory_order_acquire) || state_->device == ordinal, "CudaBackend::set_device(", ordinal,
           "): the backend is already in use on device ", state_ ? state_->device : -1,
           "; select the device before the first CUDA tensor is made");
  requested_device_ = ordinal;
}

int CudaBackend::device_ordinal() { return st().device; }
CUstream_st* CudaBackend::stream() { return st().stream; }
cu::CachingAllocator& CudaBackend::allocator() { return *st().alloc; }

void CudaBackend::empty_cache() {
  if (ready_.load(std::memory_order_acquire)) st().alloc->release_cached();
}

void CudaBackend::set_allow_tf32(bool allow) {
  std::lock_guard<std::mutex> lock(init_mu_);
  allow_tf32_ = allow;
  if (ready_.load(std::memory_order_acquire))
    CUBLAS_CHECK(cublas::api().set_math_mode(state_->cublas, allow ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

// ---- memory and copies -------------------------------------------------------------------------
void* CudaBackend::allocate(std::size_t bytes) { return st().alloc->allocate(bytes); }

void CudaBackend::deallocate(void* p, std::size_t) {
  if (!p) return;
  // No device switch needed: returning a block to the cache is host bookkeeping.
  state_->alloc->deallocate(p);
}

std::size_t CudaBackend::bytes_in_use() const {
  return ready_.load(std::memory_order_acquire) ? state_->alloc->stats().bytes_in_use : 0;
}

std::size_t CudaBackend::peak_bytes() const {
  return ready_.load(std::memory_order_acquire) ? state_->alloc->stats().peak_bytes : 0;
}

void CudaBackend::sync_and_check(State& s) {
  int bits = 0;
  CUDA_CHECK(cudaMemcpyAsync(&bits, s.dev_err, sizeof(int), cudaMemcpyDeviceToHost, s.stream));
  CUDA_CHECK(cudaStreamSynchronize(s.stream));
  if (bits) {
    CUDA_CHECK(cudaMemsetAsync(s.dev_err, 0, sizeof(int), s.stream));
    CUDA_CHECK(cudaStreamSynchronize(s.stream));
    throw Error(deferred_error_message(bits));
  }
}

void CudaBackend::copy_to_host(State& s, void* dst, const void* src, std::size_t n) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s.stream));
  sync_and_check(s);
}

void CudaBackend::copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t n) {
  if (n == 0) return;
  if (dst_dev == Device::cpu && src_dev == Device::cpu) {
    std::memmove(dst, src, n);
    return;
  }
  State& s = st();
  if (dst_dev == Device::cuda && src_dev == Device::cuda) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s.stream));
  } else if (dst_dev == Device::cuda) {
    // The host buffer may be reused as soon as we return: wait for the copy.
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s.stream));
    CUDA_CHECK(cudaStreamSynchronize(s.stream));
  } else {
    copy_to_host(s, dst, src, n);
  }
}

void CudaBackend::after_index_op(State& s) {
  if (sync_index_checks_.load(std::memory_order_relaxed)) sync_and_check(s);
}

void CudaBackend::synchronize() {
  if (!ready_.load(std::memory_order_acquire)) return;
  sync_and_check(st());
}

// ---- creation / copies -------------------------------------------------------------------------
void CudaBackend::do_fill(Tensor& x, float value) {
  std::uint64_t pattern = 0;
  switch (x.dtype()) {
    case DType::f32: {
      std::uint32_t u;
      std::memcpy(&u, &value, 4);
      pattern = u;
      break;
    }
    case DType::bf16: pattern = f32_to_bf16(value); break;
    case DType::i32: pattern = static_cast<std::uint32_t>(static_cast<std::int32_t>(value)); break;
    case DType::i64: pattern = static_cast<std::uint64_t>(static_cast<std::int64_t>(value)); break;
    case DType::u8: pattern = static_cast<std::uint8_t>(value); break;
  }
  cu::launch_fill(x.raw(), x.numel(), static_cast<int>(dtype_size(x.dtype())), pattern, st().stream);
}

void CudaBackend::do_cast(Tensor& y, const Tensor& x) {
  State& s = st();
  if (x.dtype() == y.dtype()) {
    CUDA_CHECK(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, s.stream));
    return;
  }
  cu::CastKind kind;
  if (y.dtype() == DType::f32) {
    switch (x.dtype()) {
      case DType::bf16: kind = cu::CastKind::bf16_to_f32; break;
      case DType::i32: kind = cu::CastKind::i32_to_f32; break;
      case DType::i64: kind = cu::CastKind::i64_to_f32; break;
      case DType::u8: kind = cu::CastKind::u8_to_f32; break;
      default: SK_ASSERT(false, "cast: ", dtype_name(x.dtype()), " -> f32 passed the checks");
    }
  } else if (x.dtype() == DType::f32 && y.dtype() == DType::bf16) {
    kind = cu::CastKind::f32_to_bf16;
  } else if (x.dtype() == DType::f32 && y.dtype() == DType::i64) {
    kind = cu::CastKind::f32_to_i64;
  } else {
    SK_ASSERT(false, "cast: conversion ", dtype_name(x.dtype()), " -> ", dtype_name(y.dtype()), " passed the checks");
  }
  cu::launch_cast(y.raw(), x.raw(), x.numel(), kind, s.stream);
}

void CudaBackend::do_rand_uniform(Tensor& y, RngKey key) {
  cu::launch_rand_uniform(f32(y), y.numel(), key.seed, key.stream, key.offset, st().stream);
}

// ---- GEMM --------------------------------------------------------------------------------------
// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B as its first
// operand and A as its second, with m = N, n = M, ldc = N. A row-major matrix stored [r, c] is the
// column-major [c, r] with leading dim c, so op(B)^T is B as stored (OP_N, ldb = N) unless trans_b
// (OP_T, ldb = K), and likewise for A (lda = K, or M when trans_a).
void CudaBackend::gemm_strided(State& s, const void* a, const void* b, void* c, bool bf16_in, bool bf16_out,
                               const GemmDesc& d) {
  std::int64_t M = d.M, batch = d.batch;
  if (d.stride_b == 0 && !d.trans_a && batch > 1 && fits_int(batch * d.M)) {
    // Shared B and row-major A: the batch is one GEMM over batch*M rows (A and C are contiguous).
    M = batch * d.M;
    batch = 1;
  }
  const std::int64_t lda = d.trans_a ? d.M : d.K;
  const std::int64_t ldb = d.trans_b ? d.K : d.N;
  const std::int64_t ldc = d.N;
  SK_CHECK(fits_int(M) && fits_int(d.N) && fits_int(d.K) && fits_int(lda) && fits_int(ldb),
           "gemm: dimensions M=", d.M, " N=", d.N, " K=", d.K, " exceed cuBLAS' 32-bit limit");
  const cublasOperation_t op_a = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const std::size_t ein = bf16_in ? 2 : 4, eout = bf16_out ? 2 : 4;
  const float alpha = d.alpha, beta = d.beta;
  for (std::int64_t b0 = 0; b0 < batch; b0 += kMaxGemmBatch) {
    const int nb = static_cast<int>(batch - b0 < kMaxGemmBatch ? batch - b0 : kMaxGemmBatch);
    const auto* pa = static_cast<const char*>(a) + static_cast<std::size_t>(b0 * d.stride_a) * ein;
    const auto* pb = static_cast<const char*>(b) + static_cast<std::size_t>(b0 * d.stride_b) * ein;
    auto* pc = static_cast<char*>(c) + static_cast<std::size_t>(b0 * d.stride_c) * eout;
    if (!bf16_in) {
      CUBLAS_CHECK(cublas::api().sgemm_strided_batched(
          s.cublas, op_b, op_a, static_cast<int>(d.N), static_cast<int>(M), static_cast<int>(d.K), &alpha,
          reinterpret_cast<const float*>(pb), static_cast<int>(ldb), d.stride_b, reinterpret_cast<const float*>(pa),
          static_cast<int>(lda), d.stride_a, &beta, reinterpret_cast<float*>(pc), static_cast<int>(ldc), d.stride_c, nb));
    } else {
      CUBLAS_CHECK(cublas::api().gemm_strided_batched_ex(
          s.cublas, op_b, op_a, static_cast<int>(d.N), static_cast<int>(M), static_cast<int>(d.K), &alpha, pb,
          CUDA_R_16BF, static_cast<int>(ldb), d.stride_b, pa, CUDA_R_16BF, static_cast<int>(lda), d.stride_a, &beta,
          pc, bf16_out ? CUDA_R_16BF : CUDA_R_32F, static_cast<int>(ldc), d.stride_c, nb, CUBLAS_COMPUTE_32F,
          CUBLAS_GEMM_DEFAULT));
    }
  }
}

void CudaBackend::do_gemm(Tensor& c, const Tensor& a, const Tensor& b, const GemmDesc& d) {
  State& s = st();
  const bool bf16_in = a.dtype() == DType::bf16;
  const bool bf16_out = c.dtype() == DType::bf16;
  const std::int64_t c_elems = d.batch * d.M * d.N;
  if (d.K == 0) {  // op(A) op(B) is zero: C = beta C
    cu::launch_scale_inplace(c.raw(), bf16_out, c_elems, d.beta, s.stream);
    return;
  }
  if (!bf16_in && bf16_out) {
    // cuBLAS has no f32 x f32 -> bf16 GEMM: compute in an f32 buffer and round once.
    Scratch tmp(*s.alloc, static_cast<std::size_t>(c_elems) * sizeof(float));
    if (d.beta != 0.f) cu::launch_cast(tmp.get(), c.raw(), c_elems, cu::CastKind::bf16_to_f32, s.stream);
    gemm_strided(s, a.raw(), b.raw(), tmp.get(), false, false, d);
    cu::launch_cast(c.raw(), tmp.get(), c_elems, cu::CastKind::f32_to_bf16, s.stream);
    return;
  }
  gemm_strided(s, a.raw(), b.raw(), c.raw(), bf16_in, bf16_out, d);
}

// ---- elementwise -------------------------------------------------------------------------------
void CudaBackend::do_binary(Tensor& y, const Tensor& a, const Shape& as, const Tensor& b, const Shape& bs,
                            BinaryOp op) {
  const cu::BcastDesc d = make_bcast(y.shape(), as, bs);
  cu::launch_binary_forward(f32(y), f32(a), f32(b), y.numel(), d, static_cast<int>(op), st().stream);
}

void CudaBackend::do_binary_backward(Tensor& da_full, Tensor& db_full, const Tensor& dy, const Tensor& a,
                                     const Shape& as, const Tensor& b, const Shape& bs, BinaryOp op) {
  const cu::BcastDesc d = make_bcast(dy.shape(), as, bs);
  cu::launch_binary_backward(f32(da_full), f32(db_full), f32(dy), f32(a), f32(b), dy.numel(), d, static_cast<int>(op),
                             st().stream);
}

void CudaBackend::do_unary(Tensor& y, const Tensor& x, UnaryOp op, float alpha) {
  cu::launch_unary_forward(f32(y), f32(x), x.numel(), static_cast<int>(op), alpha, st().stream);
}

void CudaBackend::do_unary_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, UnaryOp op,
                                    float alpha) {
  cu::launch_unary_backward(f32(dx), f32(dy), f32(x), f32_or_null(y), x.numel(), static_cast<int>(op), alpha,
                            st().stream);
}

void CudaBackend::do_axpy(Tensor& y, const Tensor& x, float alpha) {
  cu::launch_axpy(f32(y), f32(x), x.numel(), alpha, st().stream);
}

void CudaBackend::do_where(Tensor& y, const Tensor& mask, const Tensor& a, const Tensor& b) {
  cu::launch_where(f32(y), u8(mask), f32(a), f32(b), y.numel(), st().stream);
}

void CudaBackend::do_masked_fill(Tensor& y, const Tensor& x, const Tensor& mask, float value) {
  cu::launch_masked_fill(f32(y), f32(x), u8(mask), y.numel(), value, st().stream);
}

// ---- reductions --------------------------------------------------------------------------------
void CudaBackend::do_reduce(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                            ReduceOp op) {
  State& s = st();
  Scratch ws(*s.alloc, cu::reduce_forward_workspace_bytes(outer, n, inner));
  cu::launch_reduce_forward(f32(y), f32(x), outer, n, inner, static_cast<int>(op), ws.get(), s.stream);
}

void CudaBackend::do_reduce_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                     std::int64_t outer, std::int64_t n, std::int64_t inner, ReduceOp op) {
  cu::launch_reduce_backward(f32(dx), f32(dy), f32(x), f32_or_null(y), outer, n, inner, static_cast<int>(op),
                             st().stream);
}

void CudaBackend::do_logsumexp(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  cu::launch_logsumexp_forward(f32(y), f32(x), outer, n, inner, st().stream);
}

void CudaBackend::do_logsumexp_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                        std::int64_t outer, std::int64_t n, std::int64_t inner) {
  cu::launch_logsumexp_backward(f32(dx), f32(dy), f32(x), f32(y), outer, n, inner, st().stream);
}

void CudaBackend::do_cumsum(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                            bool reverse) {
  cu::launch_cumsum_forward(f32(y), f32(x), outer, n, inner, reverse, st().stream);
}

// ---- softmax family ----------------------------------------------------------------------------
void CudaBackend::do_softmax(Tensor& y, const Tensor& x, const Tensor& mask, float scale, float fill) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  cu::launch_softmax_forward(f32(y), f32(x), u8_or_null(mask), rows, cols, scale, fill, st().stream);
}

void CudaBackend::do_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, const Tensor& mask, float scale) {
  const std::int64_t cols = last_dim(y), rows = y.numel() / cols;
  cu::launch_softmax_backward(f32(dx), f32(dy), f32(y), u8_or_null(mask), rows, cols, scale, st().stream);
}

void CudaBackend::do_log_softmax(Tensor& y, const Tensor& x) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  cu::launch_log_softmax_forward(f32(y), f32(x), rows, cols, st().stream);
}

void CudaBackend::do_log_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y) {
  const std::int64_t cols = last_dim(y), rows = y.numel() / cols;
  cu::launch_log_softmax_backward(f32(dx), f32(dy), f32(y), rows, cols, st().stream);
}

void CudaBackend::do_cross_entropy(Tensor& loss, Tensor& lse, std::int64_t& count, const Tensor& logits,
                                   const Tensor& targets, std::int64_t ignore_index) {
  State& s = st();
  const std::int64_t R = logits.dim(0), V = logits.dim(1);
  Scratch ws(*s.alloc, cu::cross_entropy_forward_workspace_bytes(R));
  Scratch result(*s.alloc, 3 * sizeof(std::int64_t));
  auto* res = static_cast<std::int64_t*>(result.get());
  cu::launch_cross_entropy_forward(f32(loss), f32(lse), res, f32(logits), i64(targets), R, V, ignore_index, ws.get(),
                                   s.stream);
  std::int64_t host[3] = {0, 0, -1};
  copy_to_host(s, host, res, sizeof(host));
  if (host[1] > 0) {
    const std::int64_t row = host[2];
    std::int64_t t = 0;
    copy_to_host(s, &t, i64(targets) + row, sizeof(t));
    SK_CHECK(false, "cross_entropy: target ", t, " at row ", row, " is outside the vocabulary [0, ", V,
             ") and is not ignore_index ", ignore_index, " (", host[1], " such rows)");
  }
  count = host[0];
}

void CudaBackend::do_cross_entropy_backward(Tensor& dlogits, float scale, const Tensor& logits, const Tensor& targets,
                                            const Tensor& lse, std::int64_t ignore_index) {
  State& s = st();
  cu::launch_cross_entropy_backward(f32(dlogits), f32(logits), i64(targets), f32(lse), logits.dim(0), logits.dim(1),
                                    scale, ignore_index, s.dev_err, s.stream);
  after_index_op(s);
}

// ---- layernorm ---------------------------------------------------------------------------------
void CudaBackend::do_layernorm(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                               const Tensor& b, float eps) {
  const std::int64_t C = last_dim(x), rows = x.numel() / C;
  cu::launch_layernorm_forward(f32(y), f32(mean), f32(rstd), f32(x), f32_or_null(w), f32_or_null(b), rows, C, eps,
                               st().stream);
}

void CudaBackend::do_layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dy, const Tensor& x,
                                        const Tensor& w, const Tensor& mean, const Tensor& rstd) {
  State& s = st();
  const std::int64_t C = last_dim(x), rows = x.numel() / C;
  const bool params = dw.defined() || db.defined();
  Scratch ws(*s.alloc, params ? cu::layernorm_backward_workspace_bytes(rows, C) : 0);
  cu::launch_layernorm_backward(f32(dx), f32_or_null(dw), f32_or_null(db), f32(dy), f32(x), f32_or_null(w), f32(mean),
                                f32(rstd), rows, C, ws.get(), s.stream);
}

// ---- embedding ---------------------------------------------------------------------------------
void CudaBackend::do_embedding(Tensor& y, const Tensor& table, const Tensor& ids) {
  State& s = st();
  cu::launch_embedding_forward(f32(y), f32(table), i64(ids), ids.numel(), table.dim(0), table.dim(1), s.dev_err,
                               s.stream);
  after_index_op(s);
}

void CudaBackend::do_embedding_backward(Tensor& dtable, const Tensor& dy, const Tensor& ids) {
  State& s = st();
  cu::launch_embedding_backward(f32(dtable), f32(dy), i64(ids), ids.numel(), dtable.dim(0), dtable.dim(1), s.dev_err,
                                s.stream);
  after_index_op(s);
}

// ---- shape ops ---------------------------------------------------------------------------------
void CudaBackend::do_permute(Tensor& y, const Tensor& x, const std::vector<int>& perm) {
  State& s = st();
  const int r = x.ndim();
  if (r == 0) {
    CUDA_CHECK(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, s.stream));
    return;
  }
  std::int64_t xstride[cu::kMaxPermuteRank] = {};
  std::int64_t acc = 1;
  for (int i = r - 1; i >= 0; --i) {
    xstride[i] = acc;
    acc *= x.shape()[static_cast<std::size_t>(i)];
  }
  // Output dims with their input strides; drop size-1 dims, merge dims contiguous in the input.
  cu::PermuteDesc d;
  for (int i = 0; i < r; ++i) {
    const int p = perm[static_cast<std::size_t>(i)];
    const std::int64_t n = x.shape()[static_cast<std::size_t>(p)];
    if (n == 1) continue;
    if (d.rank > 0 && d.in_strides[d.rank - 1] == xstride[p] * n) {
      d.out[d.rank - 1] *= n;
      d.in_strides[d.rank - 1] = xstride[p];
    } else {
      d.out[d.rank] = n;
      d.in_strides[d.rank] = xstride[p];
      d.rank++;
    }
  }
  if (d.rank == 0 || (d.rank == 1 && d.in_strides[0] == 1)) {  // the permutation moves nothing
    CUDA_CHECK(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, s.stream));
    return;
  }
  cu::launch_permute(y.raw(), x.raw(), y.numel(), static_cast<int>(dtype_size(x.dtype())), d, s.stream);
}

void CudaBackend::do_narrow_copy(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t nx, std::int64_t ny,
                                 std::int64_t inner, std::int64_t start, bool extract, bool accumulate) {
  // nx is the larger tensor's middle axis and ny the slice's (backend.cpp's callers: narrow
  // extracts from x; concat and narrow_assign insert x into y).
  cu::launch_narrow_copy(y.raw(), x.raw(), outer, nx, ny, inner, start, extract, accumulate,
                         static_cast<int>(dtype_size(x.dtype())), st().stream);
}

void CudaBackend::do_roll(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                          std::int64_t shift) {
  cu::launch_roll(y.raw(), x.raw(), outer, n, inner, shift, static_cast<int>(dtype_size(x.dtype())), st().stream);
}

// ---- index ops ---------------------------------------------------------------------------------
void CudaBackend::do_gather_rows(Tensor& y, const Tensor& x, const Tensor& idx) {
  State& s = st();
  cu::launch_gather_rows(y.raw(), x.raw(), i64(idx), x.dim(0), x.dim(1), x.dim(2), idx.dim(1),
                         static_cast<int>(dtype_size(x.dtype())), s.dev_err, s.stream);
  after_index_op(s);
}

void CudaBackend::do_scatter_add_rows(Tensor& dx, const Tensor& dy, const Tensor& idx) {
  State& s = st();
  cu::launch_scatter_add_rows(f32(dx), f32(dy), i64(idx), dx.dim(0), dx.dim(1), dx.dim(2), idx.dim(1), s.dev_err,
                              s.stream);
  after_index_op(s);
}

void CudaBackend::do_topk(Tensor& values, Tensor& indices, const Tensor& x, std::int64_t k) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  cu::launch_topk(f32(values), static_cast<std::int64_t*>(indices.raw()), f32(x), rows, cols, k, st().stream);
}

void CudaBackend::do_argmax(Tensor& idx, const Tensor& x) {
  const std::int64_t cols = last_dim(x), rows = x.numel() / cols;
  cu::launch_argmax(static_cast<std::int64_t*>(idx.raw()), f32(x), rows, cols, st().stream);
}

// ---- randomness / optimizer --------------------------------------------------------------------
void CudaBackend::do_dropout(Tensor& y, const Tensor& x, float p, RngKey key) {
  const float scale = 1.0f / (1.0f - p);  // the CPU backend's f32 scale (model/cpu/dropout.cpp)
  cu::launch_dropout_forward(f32(y), f32(x), x.numel(), p, scale, key.seed, key.stream, key.offset, st().stream);
}

void CudaBackend::do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1,
                           float beta2, float eps, float weight_decay, std::int64_t step) {
  const auto t = static_cast<double>(step);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), t));
  cu::launch_adamw_update(f32(param), f32(grad), f32(m), f32(v), param.numel(), lr, beta1, beta2, eps, weight_decay,
                          bc1, bc2, st().stream);
}

// ---- registration (model/backends.h) -----------------------------------------------------------
bool cuda_compiled() { return true; }

bool register_cuda_backend(bool quiet) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    (void)cudaGetLastError();
    if (!quiet) {
      const std::string reason = e != cudaSuccess ? cat(cudaGetErrorString(e), " [", cudaGetErrorName(e), "]")
                                                  : std::string("no CUDA device is visible");
      std::fprintf(stderr, "sinkhorn: built with CUDA but no GPU found (%s); running on CPU\n", reason.c_str());
    }
    return false;
  }
  // Never destroyed: tensors held in static storage may be freed after static destructors run.
  static CudaBackend* backend = new CudaBackend();
  register_backend(Device::cuda, backend);
  return true;
}

std::string CudaBackend::device_model() {
  cudaDeviceProp p;
  CUDA_CHECK(cudaGetDeviceProperties(&p, device_ordinal()));
  return p.name;
}

std::size_t CudaBackend::memory_capacity() {
  (void)device_ordinal();  // initialised on its device
  std::size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return total_b;
}

std::vector<std::string> cuda_device_uuids() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return {};
  }
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
    // nvidia-smi's form: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
    std::string u = "GPU-";
    for (int b = 0; b < 16; ++b) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(prop.uuid.bytes[b]));
      u += hex;
      if (b == 3 || b == 5 || b == 7 || b == 9) u += '-';
    }
    out.push_back(u);
  }
  return out;
}

void select_cuda_device(int ordinal) {
  SK_CHECK(has_backend(Device::cuda), "cannot select CUDA device ", ordinal, ": no GPU is visible to this process");
  auto* cuda = dynamic_cast<CudaBackend*>(&backend_for(Device::cuda));
  SK_ASSERT(cuda, "the registered CUDA backend is not a CudaBackend");
  cuda->set_device(ordinal);
}

}  // namespace sk
