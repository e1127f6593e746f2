// memory_check.h — absurd sizes are a config error before anything is allocated.
//
// A lower bound of the memory the busiest rank of a run needs, from the config alone (doubles, so
// no size can overflow): the f32 weights and gradients of its share of the parameters (at least
// 1/stages of them) plus the AdamW moments (divided over the replicas with ZeRO-1), or the f32
// logits of one micro-batch and their gradient, whichever is larger. Parameters counted: token
// embedding and logits (V·E each), the E↔D projections, and per distinct layer (one with
// weight_tie) attention 4·D·H·dh and feed-forward 8·D² (12·D² with GLU). Everything else
// (activations of the layers, buffers, positional embeddings, PKM) only adds memory, so a run
// refused by this check could never have run; one that passes may still run out of memory later.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/lm/config.h"

namespace sk {

struct MemoryShape {
  LMConfig model;
  std::int64_t micro_rows = 1;  // rows of one micro-batch
  std::int64_t batch_size = 1;  // the global batch (named in the message)
  std::int64_t seq_len = 1;
  int stages = 1, replicas = 1;
  bool zero = false;  // ZeRO-1: AdamW moments sharded over the replicas
};

// The parameter count of the model (tied layers once), in double.
double estimated_parameters(const LMConfig& m);
// The lower bound described above, in bytes.
double memory_lower_bound(const MemoryShape& s);

// Throws sk::ConfigError when memory_lower_bound(s) > capacity_bytes (0: unknown, no check),
// naming the key most responsible and its value, e.g.
//   "model.dim = 1000000000: the run needs at least 96.0 EiB per rank (weights, gradients and AdamW
//    state of about 1.2e+19 parameters), more than the 23.4 GiB of memory of this cpu device"
// `device` names the memory in the message ("cpu", "cuda").
void check_fits_in_memory(const MemoryShape& s, std::size_t capacity_bytes, const std::string& device);

}  // namespace sk
