// checkpoint.h — training checkpoints (docs/architecture.md "Checkpoints").
//
//   <dir>/step-00000120/
//     model.safetensors                    every parameter by reference name (tied ones under each
//                                          name, as the reference state_dict) + buffers; loads in PyTorch
//     optim-rank-0000-of-0001.safetensors  AdamW state: "exp_avg.<param>", "exp_avg_sq.<param>" (f32,
//                                          the parameter's shape, primary names) and "step" (i64 [1]).
//                                          "of-K" counts optimizer-state shards; plain data parallelism
//                                          keeps the state replicated, so K = 1, written by rank 0.
//     trainer.json                         step, tokens seen, sampler cursor, seed, world size, config snapshot
//     index.json                           every tensor -> file, dtype, shape, absolute byte range, crc32;
//                                          every file -> bytes, crc32 (trainer.json too)
//   <dir>/latest                           "step-00000120\n": the newest complete checkpoint
//
// Writing (rank 0): everything goes to <dir>/step-N.tmp/ (a leftover .tmp is removed first), each
// file fsynced; the folder is then verified against index.json (re-read, checksums), fsynced,
// renamed to step-N, and `latest` is replaced last by an atomic rename. Older step folders beyond
// keep_last are removed afterwards. A crash at any point leaves `latest` naming a complete checkpoint.
//
// Loading goes by tensor name (any layout / world size): verify (index.json checksums), then
// parameters, buffers and optimizer state. Every problem is a one-line sk::Error naming the file,
// the tensor and the rule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/core/param.h"
#include "trainer/optimizer.h"

namespace sk {

struct TrainerState {
  std::int64_t step = 0;         // optimizer steps done
  std::int64_t tokens_seen = 0;  // training tokens consumed (all ranks)
  std::uint64_t sampler_seed = 0;
  std::uint64_t sampler_step = 0;  // the sampler cursor: next global batch
  std::uint64_t seed = 0;          // the run's seed (parameter init, RNG keys)
  int world_size = 1;
  nlohmann::json config;           // snapshot of the run configuration (free-form)
};

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);  // zlib's CRC-32

std::string checkpoint_dir_name(std::int64_t step);  // "step-00000120"

// Writes a checkpoint of `state.step` under `dir` as described above (call on one rank).
// Returns the final step folder.
std::string save_checkpoint(const std::string& dir, ParamSet& ps, AdamW& opt, const TrainerState& state,
                            std::int64_t keep_last);

// The folder `latest` names under `dir`, or nullopt when there is no `latest` file. Throws when
// `latest` is malformed or names a missing folder.
std::optional<std::string> latest_checkpoint(const std::string& dir);

// Re-reads every file listed in <step_dir>/index.json and checks sizes, byte ranges and crc32.
void verify_checkpoint(const std::string& step_dir);

// Verifies, then loads parameters + buffers into `ps` and the optimizer state into `opt`
// (both already built for the same model). Returns trainer.json.
TrainerState load_checkpoint(const std::string& step_dir, ParamSet& ps, AdamW& opt);

// The model.safetensors that `path` names: a safetensors file (as is), a checkpoint step folder
// (its model.safetensors, after verify_checkpoint when it has an index.json) or a checkpoint dir
// (the step folder its `latest` names). Throws a one-line sk::Error naming `path` otherwise.
std::string resolve_model_weights(const std::string& path);

// Loads every parameter and buffer of `ps` (finalized) by reference name from
// resolve_model_weights(path): each must be present with its shape, and no file tensor may be
// left over (load_params with require_all, !allow_unexpected). Returns the file read.
std::string load_model_weights(const std::string& path, ParamSet& ps);

}  // namespace sk
