// backend.h — the one compute interface, implemented by CpuBackend (model/cpu) and CudaBackend
// (model/cuda). Model code calls the public, non-virtual methods: they check shapes, dtypes and
// devices once (backend.cpp) and then call the protected do_* hook, which every backend implements
// on already-validated, contiguous tensors of the backend's own device.
//
// Conventions
// * All tensors are contiguous. Every op supports f32; GEMM and cast also take bf16 (GEMM: bf16
//   inputs, fp32 accumulation). Index tensors are i64; masks are u8 (1 = keep / real, 0 = masked).
// * Functional ops allocate and return their outputs on the inputs' device.
// * Gradient contract (llm.c style): *_backward returns activation gradients as fresh tensors
//   (overwrite semantics); parameter gradients passed in as `Tensor& d*` are ACCUMULATED (+=).
// * Axes are ints; negative counts from the end.
// * Broadcasting follows numpy rules (trailing dims aligned, size-1 dims stretched).
// * User errors (bad shapes/dtypes/devices) throw sk::Error naming the op, what was expected and
//   what was got.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "philox.h"
#include "tensor.h"

namespace sk {

enum class BinaryOp : std::uint8_t { add, sub, mul, div, max, min };
// Unary ops take one float parameter `alpha` where it matters:
//   scale: alpha*x   add_scalar: x+alpha   leaky_relu: x>0 ? x : alpha*x   pow_scalar: x^alpha
enum class UnaryOp : std::uint8_t {
  neg, exp, log, sqrt, rsqrt, square, abs, relu, leaky_relu, gelu, scale, add_scalar, pow_scalar,
  sigmoid, tanh
};
enum class ReduceOp : std::uint8_t { sum, mean, max };

const char* op_name(BinaryOp);
const char* op_name(UnaryOp);
const char* op_name(ReduceOp);

struct LayerNormOut {
  Tensor y, mean, rstd;  // y: x's shape; mean, rstd: [rows] (all but the last axis)
};
struct LayerNormGrads {
  Tensor dx;
};
struct CrossEntropyOut {
  Tensor loss;       // f32 [1]: mean over targets != ignore_index (0 when none)
  Tensor lse;        // f32 [R]: log-sum-exp per row (for backward)
  std::int64_t count = 0;  // number of counted targets
};
struct TopKOut {
  Tensor values;   // [..., k] descending; ties: the lower index first
  Tensor indices;  // i64 [..., k]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // ---- memory (used by Tensor; no checks) ----
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* p, std::size_t bytes) = 0;
  // Copy bytes; either side may be host (cpu) or this backend's device.
  virtual void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t n) = 0;
  virtual void synchronize() {}
  virtual std::size_t bytes_in_use() const { return 0; }
  virtual std::size_t peak_bytes() const { return 0; }
  // The device's model name (CUDA: cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"); "" on CPU.
  virtual std::string device_model() { return ""; }
  // Memory this backend's tensors can use at most, in bytes (CUDA: the device's total memory;
  // CPU: the machine's physical memory, or the cgroup's memory.max when lower); 0 = unknown.
  virtual std::size_t memory_capacity() { return 0; }
  // The queue every op of this backend is issued to (CUDA: its cudaStream_t), for communication
  // libraries that order their own stream after it without a host synchronisation; nullptr on CPU.
  virtual void* native_stream() { return nullptr; }

  // ---- creation / copies ----
  void fill(Tensor& x, float value);              // any dtype (value converted)
  Tensor cast(const Tensor& x, DType to);         // f32 <-> bf16, i64/i32/u8 -> f32, f32 -> i64 (trunc)
  Tensor contiguous_copy(const Tensor& x);        // deep copy
  // f32 in [0,1): element i = philox_uniform_at(key, i). Every op that draws (rand_uniform, dropout,
  // attention) first resolves a per-row key (rows > 0, philox.h) against its element count: the
  // tensor is batch-major over the key's rows and its element i is stream element
  // key.offset + row0 * (numel / rows) + i.
  Tensor rand_uniform(const Shape& shape, RngKey key);

  // ---- GEMM ----
  // C = alpha * op(A) @ op(B) + beta * C.  A: [batch..., M, K] (or [..., K, M] when trans_a),
  // B: [batch..., K, N] (or [..., N, K] when trans_b) or 2-D (shared across the batch),
  // C: [batch..., M, N] f32 (or bf16). A and B both f32, or both bf16 (fp32 accumulation).
  void gemm(Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
            float alpha = 1.f, float beta = 0.f);
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false,
                float alpha = 1.f);

  // ---- elementwise ----
  Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op);  // broadcasting
  Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::add); }
  Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::sub); }
  Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::mul); }
  Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::div); }
  // Gradients of a broadcasting binary op: (da, db) shaped like a and b (broadcast dims summed).
  // max/min: the gradient goes to a where a >= b (resp. a <= b), else to b.
  std::pair<Tensor, Tensor> binary_backward(const Tensor& dy, const Tensor& a, const Tensor& b, BinaryOp op);
  Tensor unary(const Tensor& x, UnaryOp op, float alpha = 0.f);
  Tensor scale(const Tensor& x, float s) { return unary(x, UnaryOp::scale, s); }
  // dx = dy * d op(x)/dx; y = op(x) is passed for ops whose derivative uses it (exp, sqrt, ...).
  Tensor unary_backward(const Tensor& dy, const Tensor& x, const Tensor& y, UnaryOp op, float alpha = 0.f);
  void axpy(Tensor& y, const Tensor& x, float alpha = 1.f);  // y += alpha * x (same numel)
  Tensor sum_to(const Tensor& x, const Shape& shape);       // sum broadcast dims away
  Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);  // mask u8, all same shape: mask ? a : b
  Tensor masked_fill(const Tensor& x, const Tensor& mask, float value);  // mask same shape: mask==0 -> value

  // ---- reductions over one axis (keepdim: that axis becomes 1; otherwise dropped) ----
  Tensor reduce(const Tensor& x, int axis, ReduceOp op, bool keepdim = false);
  // dx for reduce; y is the forward output (needed by max: ties -> the first max index).
  Tensor reduce_backward(const Tensor& dy, const Tensor& x, const Tensor& y, int axis, ReduceOp op, bool keepdim = false);
  Tensor logsumexp(const Tensor& x, int axis, bool keepdim = false);
  Tensor logsumexp_backward(const Tensor& dy, const Tensor& x, const Tensor& y, int axis, bool keepdim = false);
  Tensor cumsum(const Tensor& x, int axis, bool reverse = false);  // backward: cumsum(dy, axis, !reverse)

  // ---- softmax family (last axis) ----
  // y = softmax(scale * x) with masked entries (mask == 0) overwritten by `fill` *before* the
  // softmax (reference semantics: a fully masked row becomes uniform). mask: undefined or u8 of
  // x's shape. fill defaults to -FLT_MAX.
  Tensor softmax(const Tensor& x, const Tensor& mask = {}, float scale = 1.f, float fill = -3.4028234663852886e38f);
  // dx (already multiplied by `scale`); masked entries get 0.
  Tensor softmax_backward(const Tensor& dy, const Tensor& y, const Tensor& mask = {}, float scale = 1.f);
  Tensor log_softmax(const Tensor& x);
  Tensor log_softmax_backward(const Tensor& dy, const Tensor& y);
  // logits [R, V] f32, targets i64 [R]; loss = mean over rows with target != ignore_index.
  CrossEntropyOut cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index);
  // dlogits = dloss/count * (softmax - onehot) on counted rows, 0 on ignored rows.
  Tensor cross_entropy_backward(float dloss, const Tensor& logits, const Tensor& targets,
                                const CrossEntropyOut& fwd, std::int64_t ignore_index);

  // ---- normalisation / activations ----
  LayerNormOut layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps = 1e-5f);
  // returns dx; dw, db accumulate (+=). w/b/dw/db may be undefined (no affine).
  Tensor layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const LayerNormOut& fwd,
                            Tensor& dw, Tensor& db);

  // ---- embedding ----
  Tensor embedding(const Tensor& table, const Tensor& ids);            // table [V, E], ids i64 [...] -> [..., E]
  void embedding_backward(Tensor& dtable, const Tensor& dy, const Tensor& ids);  // dtable += scatter

  // ---- shape ops (copies) ----
  Tensor permute(const Tensor& x, const std::vector<int>& perm);  // up to 6 dims; backward: inverse perm
  Tensor concat(const std::vector<Tensor>& xs, int axis);
  Tensor narrow(const Tensor& x, int axis, std::int64_t start, std::int64_t length);  // slice copy
  // dst[..., start:start+len, ...] (+)= src along `axis` (accumulate=true adds, else overwrites).
  void narrow_assign(Tensor& dst, const Tensor& src, int axis, std::int64_t start, bool accumulate);
  std::vector<Tensor> split(const Tensor& x, int axis, const std::vector<std::int64_t>& sizes);
  Tensor roll(const Tensor& x, int axis, std::int64_t shift);  // out[i] = x[(i - shift) mod n] (torch.roll)
  Tensor pad(const Tensor& x, int axis, std::int64_t before, std::int64_t after, float value);

  // ---- index ops ----
  // x [N, R, C], idx i64 [N, K] with values in [0, R) -> out [N, K, C]: out[n,k,:] = x[n, idx[n,k], :]
  Tensor gather_rows(const Tensor& x, const Tensor& idx);
  // dx [N, R, C] += scatter of dy [N, K, C] by idx (repeated indices add up).
  void scatter_add_rows(Tensor& dx, const Tensor& dy, const Tensor& idx);
  // Top-k along the last axis (k <= size), values descending; ties: lower index first.
  TopKOut topk(const Tensor& x, std::int64_t k);
  // Arg-max along the last axis -> i64 [...] (ties: lower index first).
  Tensor argmax(const Tensor& x);

  // ---- randomness ----
  // Inverted dropout: element i kept iff philox_uniform_at(key, i) >= p; kept values scaled by
  // 1/(1-p). p == 0 returns x unchanged. Backward redraws the same mask from the key.
  Tensor dropout(const Tensor& x, float p, RngKey key);
  Tensor dropout_backward(const Tensor& dy, float p, RngKey key);

  // ---- optimizer ----
  // Decoupled AdamW over flat f32 buffers (same numel), step t >= 1 (bias correction):
  //   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)
  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1,
                    float beta2, float eps, float weight_decay, std::int64_t step);

  // ---- fused attention (appended; hooks do_attention / do_attention_backward below) ----
  // Grouped scaled-dot-product attention: G independent groups of Lq queries against Lk keys.
  //   q [G, Lq, dh], k, v [G, Lk, dh], all f32.
  //   keep   : undefined or u8 [Gm, Lq, Lk] with G % Gm == 0; group g uses keep[g % Gm] (a structural
  //            mask shared by the groups with the same g % Gm). 1 = allowed, 0 = masked.
  //   q_keep : undefined or f32 [G, Lq] (1 = query real, 0 = masked row), k_keep: undefined or f32
  //            [G, Lk] (1 = key real, 0 = masked column). Entry (g, i, j) is allowed iff
  //            keep[g % Gm, i, j] != 0 && q_keep[g, i] != 0 && k_keep[g, j] != 0 (undefined = all 1).
  // Forward (the reference's arithmetic):
  //   s[g,i,j] = scale * sum_d q[g,i,d] k[g,j,d], overwritten with -FLT_MAX where not allowed;
  //   p[g,i,:] = softmax(s[g,i,:]) (row max subtracted; a fully masked row becomes uniform 1/Lk);
  //   pd = p_drop > 0 ? inverted dropout of p : p, element (g,i,j) kept iff
  //        philox_uniform_at(key, (g*Lq + i)*Lk + j) >= p_drop, kept values times 1.0f/(1.0f - p_drop)
  //        (exactly Backend::dropout applied to the [G, Lq, Lk] tensor p);
  //   out[g,i,:] = sum_j pd[g,i,j] v[g,j,:]                     -> out [G, Lq, dh]
  // Nothing of size G*Lq*Lk needs to be kept: backward recomputes p from q, k and the masks.
  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                   const Tensor& k_keep, float scale, float p_drop = 0.f, RngKey key = {});
  struct AttentionGrads {
    Tensor dq, dk, dv;  // shaped like q, k, v (fresh tensors, overwrite semantics)
  };
  // Backward of attention() with the same arguments and dout [G, Lq, dh]:
  //   dpd = dout vᵀ; dv = pdᵀ dout; dp = dropout(dpd) (same mask and scale); D_i = sum_j p_ij dp_ij;
  //   ds_ij = allowed ? p_ij (dp_ij − D_i) : 0 (masked entries get zero gradient, also in a fully
  //   masked row); dq = scale · ds k; dk = scale · dsᵀ q.
  AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& keep, const Tensor& q_keep, const Tensor& k_keep, float scale,
                                    float p_drop = 0.f, RngKey key = {});

 protected:
  // Hooks: tensors are validated, contiguous and on this device; outputs pre-allocated.
  virtual void do_fill(Tensor& x, float value) = 0;
  virtual void do_cast(Tensor& y, const Tensor& x) = 0;
  virtual void do_rand_uniform(Tensor& y, RngKey key) = 0;
  // Strided-batched GEMM in row-major terms: for b < batch:
  //   C_b[M,N] = alpha * op(A_b) op(B_b) + beta * C_b, A_b = a + b*stride_a (elements), etc.
  //   stride_b == 0 shares B. lda/ldb/ldc are row-major leading dims of the stored matrices.
  struct GemmDesc {
    bool trans_a, trans_b;
    std::int64_t M, N, K, batch;
    std::int64_t stride_a, stride_b, stride_c;
    float alpha, beta;
  };
  virtual void do_gemm(Tensor& c, const Tensor& a, const Tensor& b, const GemmDesc& d) = 0;
  // Broadcast binary: a, b already expanded logically via shapes `as`, `bs` of out's rank.
  virtual void do_binary(Tensor& y, const Tensor& a, const Shape& as, const Tensor& b, const Shape& bs, BinaryOp op) = 0;
  // dy has y's shape; writes full-size (not yet reduced) da_full, db_full of y's shape.
  virtual void do_binary_backward(Tensor& da_full, Tensor& db_full, const Tensor& dy, const Tensor& a,
                                  const Shape& as, const Tensor& b, const Shape& bs, BinaryOp op) = 0;
  virtual void do_unary(Tensor& y, const Tensor& x, UnaryOp op, float alpha) = 0;
  virtual void do_unary_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, UnaryOp op, float alpha) = 0;
  virtual void do_axpy(Tensor& y, const Tensor& x, float alpha) = 0;
  virtual void do_where(Tensor& y, const Tensor& mask, const Tensor& a, const Tensor& b) = 0;
  virtual void do_masked_fill(Tensor& y, const Tensor& x, const Tensor& mask, float value) = 0;
  // Reductions see x as [outer, n, inner] (n = size of the reduced axis); y is [outer, inner].
  virtual void do_reduce(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, ReduceOp op) = 0;
  virtual void do_reduce_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                  std::int64_t outer, std::int64_t n, std::int64_t inner, ReduceOp op) = 0;
  virtual void do_logsumexp(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner) = 0;
  virtual void do_logsumexp_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                     std::int64_t outer, std::int64_t n, std::int64_t inner) = 0;
  virtual void do_cumsum(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, bool reverse) = 0;
  // Softmax family sees x as [rows, cols].
  virtual void do_softmax(Tensor& y, const Tensor& x, const Tensor& mask, float scale, float fill) = 0;
  virtual void do_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, const Tensor& mask, float scale) = 0;
  virtual void do_log_softmax(Tensor& y, const Tensor& x) = 0;
  virtual void do_log_softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y) = 0;
  // loss [1], lse [R]; count written by the backend (number of counted rows).
  virtual void do_cross_entropy(Tensor& loss, Tensor& lse, std::int64_t& count, const Tensor& logits,
                                const Tensor& targets, std::int64_t ignore_index) = 0;
  virtual void do_cross_entropy_backward(Tensor& dlogits, float scale, const Tensor& logits, const Tensor& targets,
                                         const Tensor& lse, std::int64_t ignore_index) = 0;
  virtual void do_layernorm(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                            const Tensor& b, float eps) = 0;
  virtual void do_layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dy, const Tensor& x,
                                     const Tensor& w, const Tensor& mean, const Tensor& rstd) = 0;
  virtual void do_embedding(Tensor& y, const Tensor& table, const Tensor& ids) = 0;
  virtual void do_embedding_backward(Tensor& dtable, const Tensor& dy, const Tensor& ids) = 0;
  virtual void do_permute(Tensor& y, const Tensor& x, const std::vector<int>& perm) = 0;
  // `nx` is the middle-axis size of the LARGER tensor, `ny` that of the slice (as the callers in
  // backend.cpp pass them):
  //   extract=true:  x is [outer, nx, inner], y is [outer, ny, inner]: y[o, j, i] = x[o, start + j, i]
  //   extract=false: y is [outer, nx, inner], x is [outer, ny, inner]: y[o, start + j, i] = x[o, j, i]
  //                  (+= when accumulate, f32 only)
  virtual void do_narrow_copy(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t nx, std::int64_t ny,
                              std::int64_t inner, std::int64_t start, bool extract, bool accumulate) = 0;
  virtual void do_roll(Tensor& y, const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, std::int64_t shift) = 0;
  virtual void do_gather_rows(Tensor& y, const Tensor& x, const Tensor& idx) = 0;
  virtual void do_scatter_add_rows(Tensor& dx, const Tensor& dy, const Tensor& idx) = 0;
  virtual void do_topk(Tensor& values, Tensor& indices, const Tensor& x, std::int64_t k) = 0;
  virtual void do_argmax(Tensor& idx, const Tensor& x) = 0;
  virtual void do_dropout(Tensor& y, const Tensor& x, float p, RngKey key) = 0;
  virtual void do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1,
                        float beta2, float eps, float weight_decay, std::int64_t step) = 0;

  // ---- fused attention hooks (appended) ----
  // Arguments as validated by attention() / attention_backward(): out, dq, dk, dv pre-allocated;
  // keep / q_keep / k_keep possibly undefined. NOT pure: the default implementations (backend.cpp)
  // compose the public ops above (matmul, mul, add, softmax, softmax_backward, dropout), which
  // materialises [G, Lq, Lk] scores; a backend overrides them with a fused kernel (CpuBackend:
  // model/cpu/fused_attention.cpp — one pass per group, scores in a per-thread scratch).
  virtual void do_attention(Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep,
                            const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop, RngKey key);
  virtual void do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                                     const Tensor& k_keep, float scale, float p_drop, RngKey key);
};

// ---- fused attention: the composed implementation ----
// What the default do_attention / do_attention_backward hooks run: attention() built from public
// ops (matmul, mul, add, softmax, softmax_backward, dropout) on `be`. Arguments as validated by
// Backend::attention / attention_backward, outputs pre-allocated. Exposed so that the op tests can
// check it on every backend, also where a backend overrides the hooks with a fused kernel.
void attention_composed(Backend& be, Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& keep, const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop,
                        RngKey key);
void attention_backward_composed(Backend& be, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                                 const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep,
                                 const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop, RngKey key);

// ---- backend registry ----
// Backends register themselves through sk::init_backends() (model/backends.cpp), which every
// executable calls once at start; backend_for then returns the instance for a device.
void register_backend(Device d, Backend* b);
bool has_backend(Device d);
Backend& backend_for(Device d);
inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

// Devices with a working backend, CPU first (tests iterate over this).
std::vector<Device> available_devices();

}  // namespace sk
