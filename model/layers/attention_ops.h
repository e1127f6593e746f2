// attention_ops.h — building blocks shared by the local and sinkhorn attention heads:
// masked-score overwrite, the grouped scaled-dot-product attention (scores, mask, softmax,
// dropout, weighted sum) with its backward, head split/merge, the causal half-head rotation and
// the assembly of selected buckets into per-query-bucket key/value sets.
//
// Masks are f32 "keep" tensors (1 = allowed, 0 = masked) given as a list of factors whose
// broadcast product is the mask; the overwrite x -> keep ? x : M (M = -FLT_MAX, model-spec §1) is
// computed exactly as x·keep + (keep − 1)·FLT_MAX, and its gradient is dy·keep, so overwritten
// entries get zero gradient and a fully masked row becomes uniform after softmax.
#pragma once
#include <cstdint>
#include <vector>

#include "model/core/backend.h"

namespace sk::attn {

constexpr float kFltMax = 3.4028234663852886e38f;

// Broadcast product of the factors (undefined when the list is empty).
Tensor keep_product(Backend& be, const std::vector<Tensor>& factors);
// x·keep + (keep − 1)·FLT_MAX: x where keep == 1, −FLT_MAX where keep == 0. keep broadcasts to x.
Tensor overwrite_masked(Backend& be, const Tensor& x, const Tensor& keep);
// dy·keep (x's shape): zero gradient to the overwritten entries.
Tensor overwrite_masked_backward(Backend& be, const Tensor& dy, const Tensor& keep);

// ---- grouped attention: G independent groups of Lq queries against Lk keys ----
// The masks of Backend::attention (backend.h, "fused attention"): entry (g, i, j) is allowed iff
// keep[g % Gm, i, j] && q_keep[g, i] && k_keep[g, j] (undefined factors allow everything).
// Nothing of size G·Lq·Lk is kept: backward recomputes the probabilities.
struct AttendStash {
  Tensor keep;    // u8 [Gm, Lq, Lk] structural mask (G % Gm == 0) or undefined
  Tensor q_keep;  // f32 [G, Lq] query-real factor or undefined
  Tensor k_keep;  // f32 [G, Lk] key-real factor or undefined
};
// q [G, Lq, dh], k, v [G, Lk, dh] -> out [G, Lq, dh]. score = q·kᵀ·scale, overwritten with M where
// not allowed, softmax, dropout(p_drop, key) when p_drop > 0, times v.
Tensor attend(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale, float p_drop, RngKey key,
              const AttendStash& s);
struct AttendGrads {
  Tensor dq, dk, dv;
};
AttendGrads attend_backward(Backend& be, const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                            float scale, float p_drop, RngKey key, const AttendStash& s);

// Host-built u8 tensor moved to `dev`.
Tensor host_mask(const std::vector<std::uint8_t>& v, const Shape& shape, Device dev);

// Constant masks that depend only on sizes (structural causal / window masks, selection masks)
// are built on the host once per layer and shape, not on every forward and reversible recompute
// (which would also mean a host-to-device copy per call on a GPU). Owned by the layer, so the
// tensors never outlive their backend.
class ConstMaskCache {
 public:
  // Returns the tensor cached under (kind, sizes, dev), building it with make() on a miss.
  template <class F>
  const Tensor& get(int kind, const std::vector<std::int64_t>& sizes, Device dev, F&& make) {
    for (auto& e : entries_)
      if (e.kind == kind && e.dev == dev && e.sizes == sizes) return e.value;
    if (entries_.size() >= kMaxEntries) entries_.erase(entries_.begin());
    entries_.push_back({kind, sizes, dev, make()});
    return entries_.back().value;
  }

 private:
  static constexpr std::size_t kMaxEntries = 8;  // a layer sees a handful of shapes at most
  struct Entry {
    int kind;
    std::vector<std::int64_t> sizes;
    Device dev;
    Tensor value;
  };
  std::vector<Entry> entries_;
};

// ---- heads ----
// [B, T, H·dh] -> [B, H, T, dh] (feature f = head·dh + i)
Tensor split_heads(Backend& be, const Tensor& x, std::int64_t heads);
// [B, H, T, dh] -> [B, T, H·dh]
Tensor merge_heads(Backend& be, const Tensor& x);

// Rolls heads hh … H−1 of x [B, H, T, e] along T by `shift` (torch.roll semantics); heads < hh unchanged.
// Its own inverse with −shift (also its backward).
Tensor roll_heads_from(Backend& be, const Tensor& x, std::int64_t hh, std::int64_t shift);

// ---- bucket selection ----
// The result of a sort net's selection for N rows of `rows` query summaries and m candidate
// buckets, k picks per summary: idx / val per selection row (row i·k + r is round r of summary i),
// or, for gumbel-sinkhorn, the dense soft permutation P (k = 1, idx = arg-max column of P).
struct Selection {
  std::int64_t rows = 0, k = 0, m = 0;
  Tensor idx;   // i64 [N, rows·k]
  Tensor val;   // f32 [N, rows·k] selection probabilities (top-k)
  Tensor P;     // f32 [N, rows, m] (gumbel-sinkhorn) or undefined
  bool dense() const { return P.defined(); }
};
// src [N, m, C] (bucket contents flattened) -> [N, rows·k, C]: each selection row's bucket scaled by
// its probability (top-k), or the P-weighted mixture of all buckets (dense).
Tensor select_buckets(Backend& be, const Tensor& src, const Selection& sel);
// Adds dsrc += ∂/∂src and returns dval [N, rows·k] (top-k) or dP [N, rows, m] (dense).
Tensor select_buckets_backward(Backend& be, Tensor& dsrc, const Tensor& dsel, const Tensor& src, const Selection& sel);
// Unscaled gather of each selection row's arg-max bucket (masks): src [N, m, C] -> [N, rows·k, C].
Tensor gather_chosen(Backend& be, const Tensor& src, const Selection& sel);

// Per-query-bucket sets: sel [N, rows·k, C] -> [N, nb, (k + own)·C].
//   sortcut == false: rows == nb; query bucket i gets its k selected buckets in round order.
//   sortcut == true:  rows == 1; every query bucket gets the same k buckets.
//   own defined ([N, nb, C]): appended after the selected ones (model-spec §11.3, §12.5).
Tensor group_sets(Backend& be, const Tensor& sel, std::int64_t nb, bool sortcut, const Tensor& own);
// Inverse for gradients: dset [N, nb, (k + own)·C] -> dsel [N, rows·k, C] and (if has_own) down [N, nb, C].
void group_sets_backward(Backend& be, const Tensor& dset, std::int64_t nb, std::int64_t k, std::int64_t C, bool sortcut,
                         bool has_own, Tensor& dsel, Tensor& down);

// Host-built tensor moved to `dev`.
Tensor host_tensor(const std::vector<float>& v, const Shape& shape, Device dev);

}  // namespace sk::attn
