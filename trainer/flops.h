// flops.h — model FLOPs per token of the Sinkhorn LM, counted from the config, and MFU.
//
// Counted (forward, per token of a length-T sequence; a multiply-add is 2 FLOPs):
//   every Linear: 2·in·out — attention to_q (D→HD), to_kv (D→2HD), to_out (HD→D); feed-forward
//     D→4D (8D with GLU) and 4D→D; PKM to_queries (D→1024); project_in / project_out (E↔D when
//     emb_dim ≠ dim); the logits E→V;
//   attention: scores and the weighted sum, 4·Lk·dh per head, with Lk the keys a query sees —
//     local heads 2·bs (causal) or 3·bs; causal sinkhorn heads (n_top + 1)·bs; non-causal sinkhorn
//     heads n_top·kbs (n_sortcut·kbs with a sortcut) + kbs when nb == nkb (the own bucket);
//   the sort nets' score matmuls: attention sort net 2·rows·cols·dh per head and sequence
//     (rows × cols = nb × nkb, 1 × nkb with a sortcut, nb × (n_top + nb) causal), simple sort
//     nets 2·rows·2dh·cols, divided by T;
//   PKM: sub-key scores 2·heads·2·nk·dk and the value sum 2·heads·topk·D.
// Not counted: embeddings (gathers), norms, softmaxes, top-k, the selection's gather of key
// buckets, elementwise ops. Backward = 2 × forward, so the model FLOPs of a training token are
// 3 × forward; a reversible stack's recompute is not counted (model FLOPs, not hardware FLOPs).
// Layer dropout is ignored (every layer counted).
//
// MFU = model FLOPs per token × tokens/s ÷ peak FLOP/s. The peak comes from `[log] peak_tflops`
// or, on GPUs, from a small table of known cards (dense bf16 tensor-core peak for bf16 runs, plain
// fp32 peak otherwise); none on CPU unless given.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "model/lm/config.h"

namespace sk {

struct FlopCount {
  double linear = 0;     // Linear layers (attention projections, feed-forward, PKM queries, projections)
  double attention = 0;  // scores + weighted sums
  double sort_net = 0;   // sort-net score matmuls
  double pkm = 0;        // PKM sub-key scores + value sums
  double logits = 0;     // to_logits
  double forward() const { return linear + attention + sort_net + pkm + logits; }
  double training() const { return 3.0 * forward(); }  // forward + backward (2x), per token
};

// Per token of a training sequence of length `seq_len`.
FlopCount model_flops_per_token(const LMConfig& cfg, std::int64_t seq_len);

// Peak FLOP/s of a known GPU model name (e.g. "NVIDIA H100 80GB HBM3") for bf16 or fp32, or
// nullopt when the card is not in the table.
std::optional<double> known_peak_flops(const std::string& device_model, bool bf16);

}  // namespace sk
