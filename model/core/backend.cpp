// backend.cpp — argument checks shared by every backend, output allocation, then dispatch to the
// do_* hooks. Backends never repeat these checks.
#include "backend.h"

#include <algorithm>
#include <array>

namespace sk {

const char* op_name(BinaryOp o) {
  static const char* n[] = {"add", "sub", "mul", "div", "max", "min"};
  return n[static_cast<int>(o)];
}
const char* op_name(UnaryOp o) {
  static const char* n[] = {"neg",  "exp",   "log",        "sqrt",       "rsqrt",   "square",  "abs",  "relu",
                            "leaky_relu", "gelu", "scale", "add_scalar", "pow_scalar", "sigmoid", "tanh"};
  return n[static_cast<int>(o)];
}
const char* op_name(ReduceOp o) {
  static const char* n[] = {"sum", "mean", "max"};
  return n[static_cast<int>(o)];
}

namespace {

std::array<Backend*, 2> g_backends{nullptr, nullptr};

void need_defined(const char* op, const char* what, const Tensor& t) {
  SK_CHECK(t.defined(), op, ": ", what, " is undefined");
}

void need(const char* op, const char* what, const Tensor& t, Device dev, DType dt) {
  need_defined(op, what, t);
  SK_CHECK(t.device() == dev, op, ": ", what, " must be on ", device_name(dev), ", got ", t.str());
  SK_CHECK(t.dtype() == dt, op, ": ", what, " must be ", dtype_name(dt), ", got ", t.str());
}

void need_f32(const char* op, const char* what, const Tensor& t, Device dev) { need(op, what, t, dev, DType::f32); }

void need_same_shape(const char* op, const char* wa, const Tensor& a, const char* wb, const Tensor& b) {
  SK_CHECK(a.shape() == b.shape(), op, ": ", wa, " and ", wb, " must have the same shape, got ", a.str(), " and ",
           b.str());
}

int norm_axis(const char* op, int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  SK_CHECK(a >= 0 && a < ndim, op, ": axis ", axis, " out of range for a tensor of rank ", ndim);
  return a;
}

struct Split3 {
  std::int64_t outer = 1, n = 1, inner = 1;
};
Split3 split3(const Shape& s, int axis) {
  Split3 r;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    if (i < axis) r.outer *= s[static_cast<std::size_t>(i)];
    else if (i == axis) r.n = s[static_cast<std::size_t>(i)];
    else r.inner *= s[static_cast<std::size_t>(i)];
  }
  return r;
}

Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  Shape r = s;
  if (keepdim) r[static_cast<std::size_t>(axis)] = 1;
  else r.erase(r.begin() + axis);
  return r;
}

// numpy broadcast of two shapes; also returns each input's shape padded to the output rank.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b, Shape& ap, Shape& bp) {
  std::size_t n = std::max(a.size(), b.size());
  ap.assign(n - a.size(), 1);
  ap.insert(ap.end(), a.begin(), a.end());
  bp.assign(n - b.size(), 1);
  bp.insert(bp.end(), b.begin(), b.end());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    SK_CHECK(ap[i] == bp[i] || ap[i] == 1 || bp[i] == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " do not broadcast");
    out[i] = ap[i] == 1 ? bp[i] : ap[i];
  }
  return out;
}

}  // namespace

void register_backend(Device d, Backend* b) { g_backends[static_cast<std::size_t>(d)] = b; }
bool has_backend(Device d) { return g_backends[static_cast<std::size_t>(d)] != nullptr; }
Backend& backend_for(Device d) {
  Backend* b = g_backends[static_cast<std::size_t>(d)];
  if (!b) {
    SK_CHECK(d != Device::cuda, "no CUDA backend: this binary was built without CUDA or no GPU was found");
    SK_ASSERT(false, "no CPU backend registered: call sk::init_backends() at program start");
  }
  return *b;
}
std::vector<Device> available_devices() {
  std::vector<Device> v;
  if (has_backend(Device::cpu)) v.push_back(Device::cpu);
  if (has_backend(Device::cuda)) v.push_back(Device::cuda);
  return v;
}

// ---------------------------------------------------------------------------------------------
void Backend::fill(Tensor& x, float value) {
  need_defined("fill", "x", x);
  SK_CHECK(x.device() == device(), "fill: x must be on ", device_name(device()), ", got ", x.str());
  if (x.numel()) do_fill(x, value);
}

Tensor Backend::cast(const Tensor& x, DType to) {
  need_defined("cast", "x", x);
  SK_CHECK(x.device() == device(), "cast: x must be on ", device_name(device()), ", got ", x.str());
  bool ok = x.dtype() == to || to == DType::f32 || (x.dtype() == DType::f32 && (to == DType::bf16 || to == DType::i64));
  SK_CHECK(ok, "cast: unsupported conversion ", dtype_name(x.dtype()), " -> ", dtype_name(to));
  Tensor y = Tensor::empty(x.shape(), to, device());
  if (x.numel()) do_cast(y, x);
  return y;
}

Tensor Backend::contiguous_copy(const Tensor& x) {
  need_defined("contiguous_copy", "x", x);
  return x.clone();
}

// A draw's key with its row placement folded into the offset (philox.h): the drawn tensor of n
// elements must split evenly into the key's rows.
static RngKey resolve_key(const char* op, RngKey key, std::int64_t n) {
  SK_CHECK(key.rows == 0 || (n >= 0 && static_cast<std::uint64_t>(n) % key.rows == 0), op, ": a per-row random draw over ",
           n, " elements does not split into its ", key.rows, " rows");
  return philox_resolve(key, static_cast<std::uint64_t>(n));
}

Tensor Backend::rand_uniform(const Shape& shape, RngKey key) {
  Tensor y = Tensor::empty(shape, DType::f32, device());
  if (y.numel()) do_rand_uniform(y, resolve_key("rand_uniform", key, y.numel()));
  return y;
}

// ---------------------------------------------------------------------------------------------
void Backend::gemm(Tensor& c, const Tensor& a, const Tensor& b, bool ta, bool tb, float alpha, float beta) {
  const char* op = "gemm";
  need_defined(op, "A", a);
  need_defined(op, "B", b);
  need_defined(op, "C", c);
  SK_CHECK(a.device() == device() && b.device() == device() && c.device() == device(), op,
           ": operands must be on ", device_name(device()), ", got A ", a.str(), ", B ", b.str(), ", C ", c.str());
  SK_CHECK((a.dtype() == DType::f32 && b.dtype() == DType::f32) || (a.dtype() == DType::bf16 && b.dtype() == DType::bf16),
           op, ": A and B must both be f32 or both bf16, got ", a.str(), " and ", b.str());
  SK_CHECK(c.dtype() == DType::f32 || c.dtype() == DType::bf16, op, ": C must be f32 or bf16, got ", c.str());
  SK_CHECK(a.ndim() >= 2 && b.ndim() >= 2 && c.ndim() >= 2, op, ": operands need rank >= 2, got A ", a.str(), ", B ",
           b.str(), ", C ", c.str());
  std::int64_t M = ta ? a.dim(-1) : a.dim(-2);
  std::int64_t K = ta ? a.dim(-2) : a.dim(-1);
  std::int64_t Kb = tb ? b.dim(-1) : b.dim(-2);
  std::int64_t N = tb ? b.dim(-2) : b.dim(-1);
  SK_CHECK(K == Kb, op, ": inner dimensions differ: op(A) is ", M, "x", K, " and op(B) is ", Kb, "x", N, " (A ",
           a.str(), ", B ", b.str(), ")");
  Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  bool shared_b = b.ndim() == 2;
  SK_CHECK(shared_b || batch_a == batch_b, op, ": batch dims of A ", a.str(), " and B ", b.str(), " differ");
  Shape want_c = batch_a;
  want_c.push_back(M);
  want_c.push_back(N);
  SK_CHECK(c.shape() == want_c || (c.numel() == shape_numel(want_c) && c.dim(-1) == N), op, ": C must be ",
           shape_str(want_c), ", got ", c.str());
  std::int64_t batch = shape_numel(batch_a);
  if (shape_numel(want_c) == 0) return;
  GemmDesc d{ta, tb, M, N, K, batch, M * K, shared_b ? 0 : K * N, M * N, alpha, beta};
  do_gemm(c, a, b, d);
}

Tensor Backend::matmul(const Tensor& a, const Tensor& b, bool ta, bool tb, float alpha) {
  need_defined("matmul", "A", a);
  need_defined("matmul", "B", b);
  SK_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "matmul: operands need rank >= 2, got ", a.str(), " and ", b.str());
  Shape cs(a.shape().begin(), a.shape().end() - 2);
  cs.push_back(ta ? a.dim(-1) : a.dim(-2));
  cs.push_back(tb ? b.dim(-2) : b.dim(-1));
  Tensor c = Tensor::empty(cs, DType::f32, device());
  gemm(c, a, b, ta, tb, alpha, 0.f);
  return c;
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::binary(const Tensor& a, const Tensor& b, BinaryOp op) {
  need_f32(op_name(op), "a", a, device());
  need_f32(op_name(op), "b", b, device());
  Shape ap, bp;
  Shape out = broadcast_shapes(op_name(op), a.shape(), b.shape(), ap, bp);
  Tensor y = Tensor::empty(out, DType::f32, device());
  if (y.numel()) do_binary(y, a, ap, b, bp, op);
  return y;
}

std::pair<Tensor, Tensor> Backend::binary_backward(const Tensor& dy, const Tensor& a, const Tensor& b, BinaryOp op) {
  const char* nm = "binary_backward";
  need_f32(nm, "dy", dy, device());
  need_f32(nm, "a", a, device());
  need_f32(nm, "b", b, device());
  Shape ap, bp;
  Shape out = broadcast_shapes(nm, a.shape(), b.shape(), ap, bp);
  SK_CHECK(dy.shape() == out, nm, ": dy must be ", shape_str(out), ", got ", dy.str());
  Tensor da = Tensor::empty(out, DType::f32, device());
  Tensor db = Tensor::empty(out, DType::f32, device());
  if (dy.numel()) do_binary_backward(da, db, dy, a, ap, b, bp, op);
  return {sum_to(da, a.shape()), sum_to(db, b.shape())};
}

Tensor Backend::unary(const Tensor& x, UnaryOp op, float alpha) {
  need_f32(op_name(op), "x", x, device());
  Tensor y = Tensor::empty(x.shape(), DType::f32, device());
  if (x.numel()) do_unary(y, x, op, alpha);
  return y;
}

Tensor Backend::unary_backward(const Tensor& dy, const Tensor& x, const Tensor& y, UnaryOp op, float alpha) {
  const char* nm = "unary_backward";
  need_f32(nm, "dy", dy, device());
  need_f32(nm, "x", x, device());
  need_same_shape(nm, "dy", dy, "x", x);
  bool needs_y = op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::rsqrt || op == UnaryOp::sigmoid ||
                 op == UnaryOp::tanh;
  if (needs_y) {
    need_f32(nm, "y", y, device());
    need_same_shape(nm, "dy", dy, "y", y);
  }
  Tensor dx = Tensor::empty(x.shape(), DType::f32, device());
  if (x.numel()) do_unary_backward(dx, dy, x, needs_y ? y : Tensor(), op, alpha);
  return dx;
}

void Backend::axpy(Tensor& y, const Tensor& x, float alpha) {
  need_f32("axpy", "y", y, device());
  need_f32("axpy", "x", x, device());
  SK_CHECK(y.numel() == x.numel(), "axpy: y ", y.str(), " and x ", x.str(), " differ in size");
  if (x.numel()) do_axpy(y, x, alpha);
}

Tensor Backend::sum_to(const Tensor& x, const Shape& shape) {
  need_f32("sum_to", "x", x, device());
  if (x.shape() == shape) return x;
  SK_CHECK(shape.size() <= x.shape().size(), "sum_to: cannot reduce ", x.str(), " to ", shape_str(shape));
  Tensor cur = x;
  std::size_t lead = x.shape().size() - shape.size();
  for (std::size_t i = 0; i < lead; ++i) cur = reduce(cur, 0, ReduceOp::sum, false);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1 && cur.shape()[i] != 1) cur = reduce(cur, static_cast<int>(i), ReduceOp::sum, true);
    else SK_CHECK(shape[i] == cur.shape()[i], "sum_to: cannot reduce ", x.str(), " to ", shape_str(shape));
  }
  return cur;
}

Tensor Backend::where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  need("where", "mask", mask, device(), DType::u8);
  need_f32("where", "a", a, device());
  need_f32("where", "b", b, device());
  need_same_shape("where", "mask", mask, "a", a);
  need_same_shape("where", "a", a, "b", b);
  Tensor y = Tensor::empty(a.shape(), DType::f32, device());
  if (y.numel()) do_where(y, mask, a, b);
  return y;
}

Tensor Backend::masked_fill(const Tensor& x, const Tensor& mask, float value) {
  need_f32("masked_fill", "x", x, device());
  need("masked_fill", "mask", mask, device(), DType::u8);
  need_same_shape("masked_fill", "x", x, "mask", mask);
  Tensor y = Tensor::empty(x.shape(), DType::f32, device());
  if (y.numel()) do_masked_fill(y, x, mask, value);
  return y;
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::reduce(const Tensor& x, int axis, ReduceOp op, bool keepdim) {
  need_f32(op_name(op), "x", x, device());
  int ax = norm_axis(op_name(op), axis, x.ndim());
  SK_CHECK(op != ReduceOp::max || x.shape()[static_cast<std::size_t>(ax)] > 0, "max: cannot reduce an empty axis of ",
           x.str());
  Split3 s = split3(x.shape(), ax);
  Tensor y = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), DType::f32, device());
  if (y.numel()) do_reduce(y, x, s.outer, s.n, s.inner, op);
  return y;
}

Tensor Backend::reduce_backward(const Tensor& dy, const Tensor& x, const Tensor& y, int axis, ReduceOp op, bool keepdim) {
  const char* nm = "reduce_backward";
  need_f32(nm, "dy", dy, device());
  need_f32(nm, "x", x, device());
  int ax = norm_axis(nm, axis, x.ndim());
  Shape rs = reduced_shape(x.shape(), ax, keepdim);
  SK_CHECK(dy.numel() == shape_numel(rs), nm, ": dy must be ", shape_str(rs), ", got ", dy.str());
  if (op == ReduceOp::max) {
    need_f32(nm, "y", y, device());
    SK_CHECK(y.numel() == shape_numel(rs), nm, ": y must be ", shape_str(rs), ", got ", y.str());
  }
  Split3 s = split3(x.shape(), ax);
  Tensor dx = Tensor::empty(x.shape(), DType::f32, device());
  if (dx.numel()) do_reduce_backward(dx, dy, x, op == ReduceOp::max ? y : Tensor(), s.outer, s.n, s.inner, op);
  return dx;
}

Tensor Backend::logsumexp(const Tensor& x, int axis, bool keepdim) {
  need_f32("logsumexp", "x", x, device());
  int ax = norm_axis("logsumexp", axis, x.ndim());
  Split3 s = split3(x.shape(), ax);
  Tensor y = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), DType::f32, device());
  if (y.numel()) do_logsumexp(y, x, s.outer, s.n, s.inner);
  return y;
}

Tensor Backend::logsumexp_backward(const Tensor& dy, const Tensor& x, const Tensor& y, int axis, bool keepdim) {
  const char* nm = "logsumexp_backward";
  need_f32(nm, "dy", dy, device());
  need_f32(nm, "x", x, device());
  need_f32(nm, "y", y, device());
  int ax = norm_axis(nm, axis, x.ndim());
  Shape rs = reduced_shape(x.shape(), ax, keepdim);
  SK_CHECK(dy.numel() == shape_numel(rs) && y.numel() == shape_numel(rs), nm, ": dy and y must be ", shape_str(rs),
           ", got ", dy.str(), " and ", y.str());
  Split3 s = split3(x.shape(), ax);
  Tensor dx = Tensor::empty(x.shape(), DType::f32, device());
  if (dx.numel()) do_logsumexp_backward(dx, dy, x, y, s.outer, s.n, s.inner);
  return dx;
}

Tensor Backend::cumsum(const Tensor& x, int axis, bool reverse) {
  need_f32("cumsum", "x", x, device());
  int ax = norm_axis("cumsum", axis, x.ndim());
  Split3 s = split3(x.shape(), ax);
  Tensor y = Tensor::empty(x.shape(), DType::f32, device());
  if (y.numel()) do_cumsum(y, x, s.outer, s.n, s.inner, reverse);
  return y;
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::softmax(const Tensor& x, const Tensor& mask, float scale, float fill) {
  need_f32("softmax", "x", x, device());
  SK_CHECK(x.ndim() >= 1, "softmax: x must have rank >= 1, got ", x.str());
  if (mask.defined()) {
    need("softmax", "mask", mask, device(), DType::u8);
    SK_CHECK(mask.numel() == x.numel(), "softmax: mask must have x's shape ", shape_str(x.shape()), ", got ", mask.str());
  }
  Tensor y = Tensor::empty(x.shape(), DType::f32, device());
  if (y.numel()) do_softmax(y, x, mask, scale, fill);
  return y;
}

Tensor Backend::softmax_backward(const Tensor& dy, const Tensor& y, const Tensor& mask, float scale) {
  need_f32("softmax_backward", "dy", dy, device());
  need_f32("softmax_backward", "y", y, device());
  need_same_shape("softmax_backward", "dy", dy, "y", y);
  if (mask.defined()) {
    need("softmax_backward", "mask", mask, device(), DType::u8);
    SK_CHECK(mask.numel() == y.numel(), "softmax_backward: mask must have y's shape, got ", mask.str());
  }
  Tensor dx = Tensor::empty(y.shape(), DType::f32, device());
  if (dx.numel()) do_softmax_backward(dx, dy, y, mask, scale);
  return dx;
}

Tensor Backend::log_softmax(const Tensor& x) {
  need_f32("log_softmax", "x", x, device());
  SK_CHECK(x.ndim() >= 1, "log_softmax: x must have rank >= 1, got ", x.str());
  Tensor y = Tensor::empty(x.shape(), DType::f32, device());
  if (y.numel()) do_log_softmax(y, x);
  return y;
}

Tensor Backend::log_softmax_backward(const Tensor& dy, const Tensor& y) {
  need_f32("log_softmax_backward", "dy", dy, device());
  need_f32("log_softmax_backward", "y", y, device());
  need_same_shape("log_softmax_backward", "dy", dy, "y", y);
  Tensor dx = Tensor::empty(y.shape(), DType::f32, device());
  if (dx.numel()) do_log_softmax_backward(dx, dy, y);
  return dx;
}

CrossEntropyOut Backend::cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index) {
  need_f32("cross_entropy", "logits", logits, device());
  need("cross_entropy", "targets", targets, device(), DType::i64);
  SK_CHECK(logits.ndim() == 2 && targets.ndim() == 1 && targets.dim(0) == logits.dim(0),
           "cross_entropy: expected logits [R, V] and targets [R], got ", logits.str(), " and ", targets.str());
  CrossEntropyOut o;
  o.loss = Tensor::empty({1}, DType::f32, device());
  o.lse = Tensor::empty({logits.dim(0)}, DType::f32, device());
  if (logits.dim(0) == 0) {
    fill(o.loss, 0.f);
    return o;
  }
  SK_CHECK(logits.dim(1) > 0, "cross_entropy: vocabulary is empty in ", logits.str());
  do_cross_entropy(o.loss, o.lse, o.count, logits, targets, ignore_index);
  return o;
}

Tensor Backend::cross_entropy_backward(float dloss, const Tensor& logits, const Tensor& targets,
                                       const CrossEntropyOut& fwd, std::int64_t ignore_index) {
  need_f32("cross_entropy_backward", "logits", logits, device());
  need("cross_entropy_backward", "targets", targets, device(), DType::i64);
  need_f32("cross_entropy_backward", "lse", fwd.lse, device());
  Tensor d = Tensor::empty(logits.shape(), DType::f32, device());
  if (d.numel() == 0) return d;
  float scale = fwd.count > 0 ? dloss / static_cast<float>(fwd.count) : 0.f;
  do_cross_entropy_backward(d, scale, logits, targets, fwd.lse, ignore_index);
  return d;
}

// ---------------------------------------------------------------------------------------------
LayerNormOut Backend::layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  need_f32("layernorm", "x", x, device());
  SK_CHECK(x.ndim() >= 1, "layernorm: x must have rank >= 1");
  std::int64_t C = x.dim(-1);
  if (w.defined()) {
    need_f32("layernorm", "weight", w, device());
    SK_CHECK(w.numel() == C, "layernorm: weight must have ", C, " elements, got ", w.str());
  }
  if (b.defined()) {
    need_f32("layernorm", "bias", b, device());
    SK_CHECK(b.numel() == C, "layernorm: bias must have ", C, " elements, got ", b.str());
  }
  LayerNormOut o;
  std::int64_t rows = C ? x.numel() / C : 0;
  o.y = Tensor::empty(x.shape(), DType::f32, device());
  o.mean = Tensor::empty({rows}, DType::f32, device());
  o.rstd = Tensor::empty({rows}, DType::f32, device());
  if (x.numel()) do_layernorm(o.y, o.mean, o.rstd, x, w, b, eps);
  return o;
}

Tensor Backend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const LayerNormOut& fwd,
                                   Tensor& dw, Tensor& db) {
  need_f32("layernorm_backward", "dy", dy, device());
  need_f32("layernorm_backward", "x", x, device());
  need_same_shape("layernorm_backward", "dy", dy, "x", x);
  std::int64_t C = x.dim(-1);
  if (dw.defined()) {
    need_f32("layernorm_backward", "dweight", dw, device());
    SK_CHECK(dw.numel() == C, "layernorm_backward: dweight must have ", C, " elements, got ", dw.str());
  }
  if (db.defined()) {
    need_f32("layernorm_backward", "dbias", db, device());
    SK_CHECK(db.numel() == C, "layernorm_backward: dbias must have ", C, " elements, got ", db.str());
  }
  Tensor dx = Tensor::empty(x.shape(), DType::f32, device());
  if (x.numel()) do_layernorm_backward(dx, dw, db, dy, x, w, fwd.mean, fwd.rstd);
  return dx;
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::embedding(const Tensor& table, const Tensor& ids) {
  need_f32("embedding", "table", table, device());
  need("embedding", "ids", ids, device(), DType::i64);
  SK_CHECK(table.ndim() == 2, "embedding: table must be [V, E], got ", table.str());
  Shape s = ids.shape();
  s.push_back(table.dim(1));
  Tensor y = Tensor::empty(s, DType::f32, device());
  if (y.numel()) do_embedding(y, table, ids);
  return y;
}

void Backend::embedding_backward(Tensor& dtable, const Tensor& dy, const Tensor& ids) {
  need_f32("embedding_backward", "dtable", dtable, device());
  need_f32("embedding_backward", "dy", dy, device());
  need("embedding_backward", "ids", ids, device(), DType::i64);
  SK_CHECK(dtable.ndim() == 2 && dy.numel() == ids.numel() * dtable.dim(1), "embedding_backward: dy ", dy.str(),
           " does not match ids ", ids.str(), " and table ", dtable.str());
  if (dy.numel()) do_embedding_backward(dtable, dy, ids);
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::permute(const Tensor& x, const std::vector<int>& perm) {
  need_defined("permute", "x", x);
  SK_CHECK(x.device() == device(), "permute: x must be on ", device_name(device()));
  SK_CHECK(static_cast<int>(perm.size()) == x.ndim() && x.ndim() <= 6, "permute: permutation of length ", perm.size(),
           " for ", x.str(), " (rank <= 6)");
  std::vector<bool> seen(perm.size(), false);
  Shape s(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    int p = perm[i];
    SK_CHECK(p >= 0 && p < x.ndim() && !seen[static_cast<std::size_t>(p)], "permute: invalid permutation for ", x.str());
    seen[static_cast<std::size_t>(p)] = true;
    s[i] = x.shape()[static_cast<std::size_t>(p)];
  }
  Tensor y = Tensor::empty(s, x.dtype(), device());
  if (y.numel()) do_permute(y, x, perm);
  return y;
}

Tensor Backend::concat(const std::vector<Tensor>& xs, int axis) {
  SK_CHECK(!xs.empty(), "concat: no tensors");
  need_defined("concat", "xs[0]", xs[0]);
  int ax = norm_axis("concat", axis, xs[0].ndim());
  Shape s = xs[0].shape();
  std::int64_t total = 0;
  for (const auto& t : xs) {
    need("concat", "input", t, device(), xs[0].dtype());
    SK_CHECK(t.ndim() == xs[0].ndim(), "concat: rank mismatch ", t.str(), " vs ", xs[0].str());
    for (int i = 0; i < t.ndim(); ++i)
      SK_CHECK(i == ax || t.shape()[static_cast<std::size_t>(i)] == s[static_cast<std::size_t>(i)],
               "concat: shapes ", t.str(), " and ", xs[0].str(), " differ off axis ", ax);
    total += t.shape()[static_cast<std::size_t>(ax)];
  }
  s[static_cast<std::size_t>(ax)] = total;
  Tensor y = Tensor::empty(s, xs[0].dtype(), device());
  std::int64_t off = 0;
  for (const auto& t : xs) {
    Split3 sp = split3(t.shape(), ax);
    if (t.numel()) do_narrow_copy(y, t, sp.outer, total, sp.n, sp.inner, off, false, false);
    off += sp.n;
  }
  return y;
}

Tensor Backend::narrow(const Tensor& x, int axis, std::int64_t start, std::int64_t length) {
  need_defined("narrow", "x", x);
  SK_CHECK(x.device() == device(), "narrow: x must be on ", device_name(device()));
  int ax = norm_axis("narrow", axis, x.ndim());
  std::int64_t n = x.shape()[static_cast<std::size_t>(ax)];
  SK_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: range [", start, ", ", start + length,
           ") out of bounds for axis ", ax, " of ", x.str());
  Shape s = x.shape();
  s[static_cast<std::size_t>(ax)] = length;
  Tensor y = Tensor::empty(s, x.dtype(), device());
  Split3 sp = split3(x.shape(), ax);
  if (y.numel()) do_narrow_copy(y, x, sp.outer, n, length, sp.inner, start, true, false);
  return y;
}

void Backend::narrow_assign(Tensor& dst, const Tensor& src, int axis, std::int64_t start, bool accumulate) {
  need_defined("narrow_assign", "dst", dst);
  need("narrow_assign", "src", src, device(), dst.dtype());
  SK_CHECK(dst.device() == device(), "narrow_assign: dst must be on ", device_name(device()));
  SK_CHECK(!accumulate || dst.dtype() == DType::f32, "narrow_assign: accumulate needs f32, got ", dst.str());
  int ax = norm_axis("narrow_assign", axis, dst.ndim());
  SK_CHECK(src.ndim() == dst.ndim(), "narrow_assign: rank mismatch ", src.str(), " into ", dst.str());
  std::int64_t len = src.shape()[static_cast<std::size_t>(ax)];
  std::int64_t n = dst.shape()[static_cast<std::size_t>(ax)];
  for (int i = 0; i < dst.ndim(); ++i)
    SK_CHECK(i == ax || src.shape()[static_cast<std::size_t>(i)] == dst.shape()[static_cast<std::size_t>(i)],
             "narrow_assign: ", src.str(), " does not fit ", dst.str(), " off axis ", ax);
  SK_CHECK(start >= 0 && start + len <= n, "narrow_assign: range [", start, ", ", start + len, ") out of bounds for ",
           dst.str());
  Split3 sp = split3(src.shape(), ax);
  if (src.numel()) do_narrow_copy(dst, src, sp.outer, n, len, sp.inner, start, false, accumulate);
}

std::vector<Tensor> Backend::split(const Tensor& x, int axis, const std::vector<std::int64_t>& sizes) {
  need_defined("split", "x", x);
  int ax = norm_axis("split", axis, x.ndim());
  std::int64_t total = 0;
  for (auto s : sizes) total += s;
  SK_CHECK(total == x.shape()[static_cast<std::size_t>(ax)], "split: sizes add up to ", total, " but axis ", ax,
           " of ", x.str(), " has ", x.shape()[static_cast<std::size_t>(ax)]);
  std::vector<Tensor> out;
  std::int64_t off = 0;
  for (auto s : sizes) {
    out.push_back(narrow(x, ax, off, s));
    off += s;
  }
  return out;
}

Tensor Backend::roll(const Tensor& x, int axis, std::int64_t shift) {
  need_defined("roll", "x", x);
  SK_CHECK(x.device() == device(), "roll: x must be on ", device_name(device()));
  int ax = norm_axis("roll", axis, x.ndim());
  Split3 sp = split3(x.shape(), ax);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), device());
  if (y.numel() == 0) return y;
  std::int64_t s = sp.n ? ((shift % sp.n) + sp.n) % sp.n : 0;
  do_roll(y, x, sp.outer, sp.n, sp.inner, s);
  return y;
}

Tensor Backend::pad(const Tensor& x, int axis, std::int64_t before, std::int64_t after, float value) {
  need_defined("pad", "x", x);
  SK_CHECK(before >= 0 && after >= 0, "pad: negative padding ", before, ", ", after);
  int ax = norm_axis("pad", axis, x.ndim());
  Shape s = x.shape();
  s[static_cast<std::size_t>(ax)] += before + after;
  Tensor y = Tensor::empty(s, x.dtype(), device());
  fill(y, value);
  narrow_assign(y, x, ax, before, false);
  return y;
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::gather_rows(const Tensor& x, const Tensor& idx) {
  need_defined("gather_rows", "x", x);
  SK_CHECK(x.device() == device(), "gather_rows: x must be on ", device_name(device()));
  need("gather_rows", "idx", idx, device(), DType::i64);
  SK_CHECK(x.ndim() == 3 && idx.ndim() == 2 && idx.dim(0) == x.dim(0), "gather_rows: expected x [N, R, C] and idx [N, K], got ",
           x.str(), " and ", idx.str());
  Tensor y = Tensor::empty({x.dim(0), idx.dim(1), x.dim(2)}, x.dtype(), device());
  if (y.numel()) do_gather_rows(y, x, idx);
  return y;
}

void Backend::scatter_add_rows(Tensor& dx, const Tensor& dy, const Tensor& idx) {
  need_f32("scatter_add_rows", "dx", dx, device());
  need_f32("scatter_add_rows", "dy", dy, device());
  need("scatter_add_rows", "idx", idx, device(), DType::i64);
  SK_CHECK(dx.ndim() == 3 && dy.ndim() == 3 && idx.ndim() == 2 && dy.dim(0) == dx.dim(0) && idx.dim(0) == dx.dim(0) &&
               dy.dim(1) == idx.dim(1) && dy.dim(2) == dx.dim(2),
           "scatter_add_rows: expected dx [N, R, C], dy [N, K, C], idx [N, K], got ", dx.str(), ", ", dy.str(), ", ",
           idx.str());
  if (dy.numel()) do_scatter_add_rows(dx, dy, idx);
}

TopKOut Backend::topk(const Tensor& x, std::int64_t k) {
  need_f32("topk", "x", x, device());
  SK_CHECK(x.ndim() >= 1 && k >= 0 && k <= x.dim(-1), "topk: k = ", k, " out of range for ", x.str());
  Shape s = x.shape();
  s.back() = k;
  TopKOut o{Tensor::empty(s, DType::f32, device()), Tensor::empty(s, DType::i64, device())};
  if (o.values.numel()) do_topk(o.values, o.indices, x, k);
  return o;
}

Tensor Backend::argmax(const Tensor& x) {
  need_f32("argmax", "x", x, device());
  SK_CHECK(x.ndim() >= 1 && x.dim(-1) > 0, "argmax: empty last axis in ", x.str());
  Shape s(x.shape().begin(), x.shape().end() - 1);
  Tensor y = Tensor::empty(s, DType::i64, device());
  if (y.numel()) do_argmax(y, x);
  return y;
}

// ---------------------------------------------------------------------------------------------
Tensor Backend::dropout(const Tensor& x, float p, RngKey key) {
  need_f32("dropout", "x", x, device());
  SK_CHECK(p >= 0.f && p < 1.f, "dropout: probability must be in [0, 1), got ", p);
  if (p == 0.f) return x;
  Tensor y = Tensor::empty(x.shape(), DType::f32, device());
  if (y.numel()) do_dropout(y, x, p, resolve_key("dropout", key, y.numel()));
  return y;
}

Tensor Backend::dropout_backward(const Tensor& dy, float p, RngKey key) {
  // The mask and scale are the same as forward, and dropout is linear: dx = dropout(dy).
  return dropout(dy, p, key);
}

void Backend::adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1, float beta2,
                           float eps, float weight_decay, std::int64_t step) {
  need_f32("adamw_update", "param", param, device());
  need_f32("adamw_update", "grad", grad, device());
  need_f32("adamw_update", "m", m, device());
  need_f32("adamw_update", "v", v, device());
  SK_CHECK(grad.numel() == param.numel() && m.numel() == param.numel() && v.numel() == param.numel(),
           "adamw_update: param ", param.str(), ", grad ", grad.str(), ", m ", m.str(), ", v ", v.str(), " differ in size");
  SK_CHECK(step >= 1, "adamw_update: step must be >= 1, got ", step);
  if (param.numel()) do_adamw(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
}

// ---- fused attention ----------------------------------------------------------------------------
namespace {

struct AttnDims {
  std::int64_t G, Lq, Lk, dh;
};

AttnDims check_attention(const char* op, const Backend& be, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& keep, const Tensor& q_keep, const Tensor& k_keep, float p_drop) {
  Device dev = be.device();
  need_f32(op, "q", q, dev);
  need_f32(op, "k", k, dev);
  need_f32(op, "v", v, dev);
  SK_CHECK(q.ndim() == 3, op, ": q must be [G, Lq, dh], got ", q.str());
  AttnDims d{q.dim(0), q.dim(1), k.ndim() == 3 ? k.dim(1) : -1, q.dim(2)};
  SK_CHECK(k.ndim() == 3 && k.dim(0) == d.G && k.dim(2) == d.dh, op, ": k must be [", d.G, ", Lk, ", d.dh, "], got ",
           k.str());
  SK_CHECK(v.shape() == k.shape(), op, ": v must have k's shape ", shape_str(k.shape()), ", got ", v.str());
  if (keep.defined()) {
    need(op, "keep", keep, dev, DType::u8);
    SK_CHECK(keep.ndim() == 3 && keep.dim(1) == d.Lq && keep.dim(2) == d.Lk && keep.dim(0) > 0 &&
                 d.G % keep.dim(0) == 0,
             op, ": keep must be u8 [Gm, ", d.Lq, ", ", d.Lk, "] with ", d.G, " % Gm == 0, got ", keep.str());
  }
  if (q_keep.defined()) {
    need_f32(op, "q_keep", q_keep, dev);
    SK_CHECK(q_keep.shape() == Shape({d.G, d.Lq}), op, ": q_keep must be [", d.G, ", ", d.Lq, "], got ",
             q_keep.str());
  }
  if (k_keep.defined()) {
    need_f32(op, "k_keep", k_keep, dev);
    SK_CHECK(k_keep.shape() == Shape({d.G, d.Lk}), op, ": k_keep must be [", d.G, ", ", d.Lk, "], got ",
             k_keep.str());
  }
  SK_CHECK(p_drop >= 0.f && p_drop < 1.f, op, ": dropout probability must be in [0, 1), got ", p_drop);
  return d;
}

// The allowed-entry mask of attention() as f32 [G, Lq, Lk] (1 / 0), or undefined when all allowed.
Tensor attention_keep_f32(Backend& be, const AttnDims& d, const Tensor& keep, const Tensor& q_keep,
                          const Tensor& k_keep) {
  Tensor m;
  if (keep.defined()) {
    std::int64_t Gm = keep.dim(0);
    Tensor kf = be.cast(keep, DType::f32).reshape({1, Gm, d.Lq, d.Lk});
    m = be.mul(kf, Tensor::full({d.G / Gm, 1, 1, 1}, 1.f, be.device())).reshape({d.G, d.Lq, d.Lk});
  }
  if (q_keep.defined()) {
    Tensor f = q_keep.reshape({d.G, d.Lq, 1});
    m = m.defined() ? be.mul(m, f) : be.mul(f, Tensor::full({1, 1, d.Lk}, 1.f, be.device()));
  }
  if (k_keep.defined()) {
    Tensor f = k_keep.reshape({d.G, 1, d.Lk});
    m = m.defined() ? be.mul(m, f) : be.mul(f, Tensor::full({1, d.Lq, 1}, 1.f, be.device()));
  }
  return m;
}

// Scores with masked entries overwritten: s·m + (m − 1)·FLT_MAX (exact: s where m = 1, −FLT_MAX where 0).
Tensor attention_probs(Backend& be, const Tensor& q, const Tensor& k, const Tensor& m, float scale) {
  Tensor s = be.matmul(q, k, false, true, scale);  // [G, Lq, Lk]
  if (m.defined()) {
    Tensor bias = be.scale(be.unary(m, UnaryOp::add_scalar, -1.f), 3.4028234663852886e38f);
    s = be.add(be.mul(s, m), bias);
  }
  return be.softmax(s);
}

}  // namespace

Tensor Backend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                          const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  AttnDims d = check_attention("attention", *this, q, k, v, keep, q_keep, k_keep, p_drop);
  Tensor out = Tensor::empty({d.G, d.Lq, d.dh}, DType::f32, device());
  if (out.numel() == 0) return out;
  if (d.Lk == 0) {  // softmax over nothing: no keys contribute
    fill(out, 0.f);
    return out;
  }
  do_attention(out, q, k, v, keep, q_keep, k_keep, scale, p_drop, resolve_key("attention", key, d.G * d.Lq * d.Lk));
  return out;
}

Backend::AttentionGrads Backend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                    const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                                                    const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  AttnDims d = check_attention("attention_backward", *this, q, k, v, keep, q_keep, k_keep, p_drop);
  need_f32("attention_backward", "dout", dout, device());
  SK_CHECK(dout.shape() == q.shape(), "attention_backward: dout must have q's shape ", shape_str(q.shape()), ", got ",
           dout.str());
  AttentionGrads g;
  g.dq = Tensor::empty(q.shape(), DType::f32, device());
  g.dk = Tensor::empty(k.shape(), DType::f32, device());
  g.dv = Tensor::empty(v.shape(), DType::f32, device());
  if (d.G * d.Lq * d.Lk * d.dh == 0) {
    fill(g.dq, 0.f);
    fill(g.dk, 0.f);
    fill(g.dv, 0.f);
    return g;
  }
  do_attention_backward(g.dq, g.dk, g.dv, dout, q, k, v, keep, q_keep, k_keep, scale, p_drop,
                        resolve_key("attention_backward", key, d.G * d.Lq * d.Lk));
  return g;
}

// The composition of public ops (the default hooks; every backend has these).
void attention_composed(Backend& be, Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& keep, const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop,
                        RngKey key) {
  AttnDims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2)};
  Tensor p = attention_probs(be, q, k, attention_keep_f32(be, d, keep, q_keep, k_keep), scale);
  Tensor pd = p_drop > 0.f ? be.dropout(p, p_drop, key) : p;
  be.gemm(out, pd, v, false, false);
}

void attention_backward_composed(Backend& be, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                                 const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep,
                                 const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  AttnDims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2)};
  Tensor m = attention_keep_f32(be, d, keep, q_keep, k_keep);
  Tensor p = attention_probs(be, q, k, m, scale);
  Tensor pd = p_drop > 0.f ? be.dropout(p, p_drop, key) : p;
  be.gemm(dv, pd, dout, true, false);                       // pdᵀ dout
  Tensor dpd = be.matmul(dout, v, false, true);             // [G, Lq, Lk]
  Tensor dp = p_drop > 0.f ? be.dropout_backward(dpd, p_drop, key) : dpd;
  Tensor ds = be.softmax_backward(dp, p);
  if (m.defined()) ds = be.mul(ds, m);                      // zero gradient to masked entries
  be.gemm(dq, ds, k, false, false, scale);
  be.gemm(dk, ds, q, true, false, scale);
}

void Backend::do_attention(Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep,
                           const Tensor& q_keep, const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  attention_composed(*this, out, q, k, v, keep, q_keep, k_keep, scale, p_drop, key);
}

void Backend::do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& keep, const Tensor& q_keep,
                                    const Tensor& k_keep, float scale, float p_drop, RngKey key) {
  attention_backward_composed(*this, dq, dk, dv, dout, q, k, v, keep, q_keep, k_keep, scale, p_drop, key);
}

}  // namespace sk
