// launchers.h — plain-pointer entry points to the CUDA kernels (model/cuda/kernels/*.cu).
//
// The split (style.md §3.3): a .cu file holds `<op>_kernel`s and the `launch_<op>[_<direction>]`
// functions declared here; each launcher picks the grid, launches on the given stream and checks
// cudaGetLastError. CudaBackend (cuda_backend.cpp, g++) validates tensors and calls these. Nothing
// here knows about sk::Tensor: pointers, element counts and small POD descriptors only.
//
// Conventions
// * All buffers are device pointers, contiguous, and the launchers queue work on `s` (asynchronous).
// * bf16 data is passed as raw 16-bit patterns (std::uint16_t), converted with round-to-nearest-even
//   exactly as sk::f32_to_bf16 does on the host.
// * Ops that take an op code use the numbering of the matching sk enum in model/core/backend.h
//   (cuda_backend.cpp static_asserts that they agree).
// * Index-taking kernels (embedding, gather/scatter rows, cross-entropy backward) never touch memory
//   out of range: a bad index is skipped (or yields 0) and its error bit is OR-ed into `*err`, a
//   device int the backend reads at its next synchronisation (kErr* below).
// * Launchers that need temporary memory take a `workspace` of the size their *_workspace_bytes()
//   function returns (which may be 0; then workspace may be null).
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace sk::cu {

// ---- deferred index errors (bits of *err) ----------------------------------------------------
enum : int {
  kErrEmbedding = 1,
  kErrEmbeddingBackward = 2,
  kErrGatherRows = 4,
  kErrScatterAddRows = 8,
  kErrCrossEntropyBackward = 16,
};

// ---- op codes (= sk::BinaryOp / UnaryOp / ReduceOp) ------------------------------------------
enum BinaryCode : int { kAdd = 0, kSub, kMul, kDiv, kMax, kMin };
enum UnaryCode : int {
  kNeg = 0, kExp, kLog, kSqrt, kRsqrt, kSquare, kAbs, kRelu, kLeakyRelu, kGelu, kScale, kAddScalar,
  kPowScalar, kSigmoid, kTanh
};
enum ReduceCode : int { kSum = 0, kMean, kMaxReduce };

// ---- creation / conversion / randomness (kernels/fill_cast.cu) --------------------------------
// Writes `pattern`'s low `elem_size` bytes (1, 2, 4 or 8) into each of n elements.
void launch_fill(void* dst, std::int64_t n, int elem_size, std::uint64_t pattern, cudaStream_t s);
enum class CastKind : int { f32_to_bf16, bf16_to_f32, i32_to_f32, i64_to_f32, u8_to_f32, f32_to_i64 };
void launch_cast(void* y, const void* x, std::int64_t n, CastKind kind, cudaStream_t s);
// y[i] = philox_uniform_at({seed, stream_id, offset}, i): bit-identical to the CPU backend.
void launch_rand_uniform(float* y, std::int64_t n, std::uint64_t seed, std::uint64_t stream_id, std::uint64_t offset,
                         cudaStream_t s);
// y[i] = philox_uniform_at(key, i) >= p ? x[i] * scale : 0 (scale = 1.0f / (1.0f - p), from the host),
// key = {seed, stream_id, offset}.
void launch_dropout_forward(float* y, const float* x, std::int64_t n, float p, float scale, std::uint64_t seed,
                            std::uint64_t stream_id, std::uint64_t offset, cudaStream_t s);
// c = beta * c over n elements (f32, or bf16 bits when bf16); beta == 0 writes zeros (no NaN kept).
void launch_scale_inplace(void* c, bool bf16, std::int64_t n, float beta, cudaStream_t s);

// ---- elementwise (kernels/elementwise.cu) ------------------------------------------------------
constexpr int kMaxBcastRank = 8;
// Output of `rank` dims `out`; sa/sb are each input's element strides per output dim (0 where the
// input is broadcast). The host merges dims first, so rank is usually 1-3.
struct BcastDesc {
  int rank = 0;
  std::int64_t out[kMaxBcastRank] = {};
  std::int64_t sa[kMaxBcastRank] = {};
  std::int64_t sb[kMaxBcastRank] = {};
};
void launch_binary_forward(float* y, const float* a, const float* b, std::int64_t n, const BcastDesc& d, int op,
                           cudaStream_t s);
// Full-size gradients (y's shape) for both inputs; the host sums broadcast dims away.
void launch_binary_backward(float* da, float* db, const float* dy, const float* a, const float* b, std::int64_t n,
                            const BcastDesc& d, int op, cudaStream_t s);
void launch_unary_forward(float* y, const float* x, std::int64_t n, int op, float alpha, cudaStream_t s);
// y may be null for ops whose derivative does not use it (all but exp, sqrt, rsqrt, sigmoid, tanh).
void launch_unary_backward(float* dx, const float* dy, const float* x, const float* y, std::int64_t n, int op,
                           float alpha, cudaStream_t s);
void launch_axpy(float* y, const float* x, std::int64_t n, float alpha, cudaStream_t s);
void launch_where(float* y, const std::uint8_t* mask, const float* a, const float* b, std::int64_t n, cudaStream_t s);
void launch_masked_fill(float* y, const float* x, const std::uint8_t* mask, std::int64_t n, float value,
                        cudaStream_t s);
// Decoupled AdamW; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (computed on the host in double).
void launch_adamw_update(float* param, const float* grad, float* m, float* v, std::int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, float bc1, float bc2, cudaStream_t s);

// ---- reductions over [outer, n, inner] (kernels/reduce.cu) -------------------------------------
std::size_t reduce_forward_workspace_bytes(std::int64_t outer, std::int64_t n, std::int64_t inner);
// y [outer, inner]; op: ReduceCode. max propagates NaN (as the CPU backend).
void launch_reduce_forward(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner, int op,
                           void* workspace, cudaStream_t s);
// dx [outer, n, inner]. max: the gradient goes to the first index holding y (y may be null otherwise).
void launch_reduce_backward(float* dx, const float* dy, const float* x, const float* y, std::int64_t outer,
                            std::int64_t n, std::int64_t inner, int op, cudaStream_t s);
void launch_logsumexp_forward(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                              cudaStream_t s);
void launch_logsumexp_backward(float* dx, const float* dy, const float* x, const float* y, std::int64_t outer,
                               std::int64_t n, std::int64_t inner, cudaStream_t s);
void launch_cumsum_forward(float* y, const float* x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                           bool reverse, cudaStream_t s);
// Along the last axis of [rows, cols]; ties and NaN as the CPU backend (NaN largest, lower index first).
void launch_argmax(std::int64_t* idx, const float* x, std::int64_t rows, std::int64_t cols, cudaStream_t s);
void launch_topk(float* values, std::int64_t* indices, const float* x, std::int64_t rows, std::int64_t cols,
                 std::int64_t k, cudaStream_t s);

// ---- softmax family and cross-entropy over [rows, cols] (kernels/softmax.cu) --------------------
// mask: null or u8 [rows, cols] (0 = masked: its score is overwritten by `fill` before the softmax).
void launch_softmax_forward(float* y, const float* x, const std::uint8_t* mask, std::int64_t rows, std::int64_t cols,
                            float scale, float fill, cudaStream_t s);
void launch_softmax_backward(float* dx, const float* dy, const float* y, const std::uint8_t* mask, std::int64_t rows,
                             std::int64_t cols, float scale, cudaStream_t s);
void launch_log_softmax_forward(float* y, const float* x, std::int64_t rows, std::int64_t cols, cudaStream_t s);
void launch_log_softmax_backward(float* dx, const float* dy, const float* y, std::int64_t rows, std::int64_t cols,
                                 cudaStream_t s);
std::size_t cross_entropy_forward_workspace_bytes(std::int64_t rows);
// Writes lse [rows], loss [1] (mean over counted rows, 0 when none) and result[3] (device i64):
// {counted rows, rows with a bad target, first bad row or -1}. The host copies `result` back.
void launch_cross_entropy_forward(float* loss, float* lse, std::int64_t* result, const float* logits,
                                  const std::int64_t* targets, std::int64_t rows, std::int64_t cols,
                                  std::int64_t ignore_index, void* workspace, cudaStream_t s);
void launch_cross_entropy_backward(float* dlogits, const float* logits, const std::int64_t* targets, const float* lse,
                                   std::int64_t rows, std::int64_t cols, float scale, std::int64_t ignore_index,
                                   int* err, cudaStream_t s);

// ---- layernorm over [rows, cols] (kernels/layernorm.cu) -----------------------------------------
// w, b may be null (no affine).
void launch_layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                              std::int64_t rows, std::int64_t cols, float eps, cudaStream_t s);
std::size_t layernorm_backward_workspace_bytes(std::int64_t rows, std::int64_t cols);
// dx overwritten; dw, db (may be null) ACCUMULATE. Deterministic (no atomics).
void launch_layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                               const float* mean, const float* rstd, std::int64_t rows, std::int64_t cols,
                               void* workspace, cudaStream_t s);

// ---- embedding, gather/scatter, shape copies (kernels/index.cu) ---------------------------------
// y [n, E] = table[ids[i], :]; a bad id yields a zero row and sets kErrEmbedding.
void launch_embedding_forward(float* y, const float* table, const std::int64_t* ids, std::int64_t n, std::int64_t V,
                              std::int64_t E, int* err, cudaStream_t s);
// dtable[ids[i], :] += dy[i, :] (atomicAdd; repeated ids add up in an unspecified order).
void launch_embedding_backward(float* dtable, const float* dy, const std::int64_t* ids, std::int64_t n,
                               std::int64_t V, std::int64_t E, int* err, cudaStream_t s);
constexpr int kMaxPermuteRank = 6;
// y (dims `out`, row-major) = x read at in_strides (x's element stride of each output dim).
struct PermuteDesc {
  int rank = 0;
  std::int64_t out[kMaxPermuteRank] = {};
  std::int64_t in_strides[kMaxPermuteRank] = {};
};
void launch_permute(void* y, const void* x, std::int64_t n, int elem_size, const PermuteDesc& d, cudaStream_t s);
// Big tensor [outer, n_big, inner], slice [outer, n_small, inner] at `start` of the middle axis.
//   extract: small = big[:, start:start+n_small, :]     (y = small, x = big)
//   insert:  big[:, start:start+n_small, :] (+)= small  (y = big,   x = small); accumulate: f32 only
void launch_narrow_copy(void* y, const void* x, std::int64_t outer, std::int64_t n_big, std::int64_t n_small,
                        std::int64_t inner, std::int64_t start, bool extract, bool accumulate, int elem_size,
                        cudaStream_t s);
// y[o, j, i] = x[o, (j - shift) mod n, i], shift in [0, n).
void launch_roll(void* y, const void* x, std::int64_t outer, std::int64_t n, std::int64_t inner, std::int64_t shift,
                 int elem_size, cudaStream_t s);
// x [N, R, C], idx [N, K] -> y [N, K, C]; a bad index yields zeros and sets kErrGatherRows.
void launch_gather_rows(void* y, const void* x, const std::int64_t* idx, std::int64_t N, std::int64_t R,
                        std::int64_t C, std::int64_t K, int elem_size, int* err, cudaStream_t s);
// dx [N, R, C] += scatter of dy [N, K, C] by idx [N, K] (atomicAdd).
void launch_scatter_add_rows(float* dx, const float* dy, const std::int64_t* idx, std::int64_t N, std::int64_t R,
                             std::int64_t C, std::int64_t K, int* err, cudaStream_t s);

}  // namespace sk::cu
