// checkpoint.h — training checkpoints (docs/architecture.md "Checkpoints"), sharded by pipeline
// stage and loadable on any layout.
//
//   <dir>/step-00000120/
//     model-stage-K-of-S.safetensors   stage K's parameters under every reference name its blocks
//                                      use (a tied module's replica under its stage's names) +
//                                      the stage's BatchNorm buffers; written by replica 0 of the stage
//     optim-stage-K-of-S.safetensors   AdamW state of stage K: "exp_avg.<init_key>",
//                                      "exp_avg_sq.<init_key>" (f32, the parameter's shape; the
//                                      layout-independent name, Parameter::init_key; a tied
//                                      replica's state is written once, by the stage of its first
//                                      use) and "step" (i64 [1])
//     optim-stage-K-of-S-shard-J-of-R.safetensors   the same with ZeRO-1, one file per replica
//                                      J: the elements it owns, as "exp_avg.<init_key>[a:b]" (1-D,
//                                      elements a … b-1 of the flattened parameter) where a
//                                      parameter is cut between shards (whole tensors otherwise);
//                                      "step" in shard 0's file. Loading reassembles every
//                                      parameter's state by name and range, for any number of
//                                      replicas, with or without ZeRO
//     trainer.json                     step, tokens seen, sampler cursor, seed, layout (world size,
//                                      stages, replicas, blocks per stage), config snapshot
//     index.json                       every tensor -> file, dtype, shape, absolute byte range,
//                                      crc32; every file -> kind, bytes, crc32
//   <dir>/latest                       "step-00000120\n": the newest complete checkpoint
//
// Writing (collective over the world communicator; every phase ends in an agreement, so a
// failure on any rank fails the save on every rank and nothing becomes `latest`):
//   1. rank 0 creates <dir>/step-N.tmp/ (a leftover is removed first);
//   2. each stage's writer (replica 0) writes its two files, each fsynced;
//   3. rank 0 writes trainer.json, indexes every file into index.json, re-reads and verifies the
//      folder, fsyncs it, renames it to step-N, replaces `latest` by an atomic rename, and prunes
//      step folders beyond keep_last.
// A crash at any point leaves `latest` naming a complete checkpoint.
//
// Loading goes by tensor name through index.json: each rank reads only the byte ranges of its own
// tensors (checking each one's crc32), so a checkpoint saved on any layout (stages and replicas)
// resumes on any other. Format version 1 checkpoints (one model.safetensors and
// optim-rank-0000-of-0001.safetensors, written before pipeline parallelism) load the same way.
// Every problem is a one-line sk::Error naming the file, the tensor and the rule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/core/param.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/optimizer.h"

namespace sk {

namespace par {
class Communicator;  // parallel/communicator.h (kept out of this header: the fuzzers build without MPI)
}

struct TrainerState {
  std::int64_t step = 0;         // optimizer steps done
  std::int64_t tokens_seen = 0;  // training tokens consumed (all ranks)
  std::uint64_t sampler_seed = 0;
  std::uint64_t sampler_step = 0;  // the sampler cursor: next global batch
  std::uint64_t seed = 0;          // the run's seed (parameter init, RNG keys)
  int world_size = 1;
  int stages = 1, replicas = 1;         // the layout that wrote it
  std::vector<std::int64_t> stage_layers;  // layers per stage
  nlohmann::json config;           // snapshot of the run configuration (free-form)
  nlohmann::json data;             // the data's fingerprint (trainer/data_record.h); null if absent
};

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);  // zlib's CRC-32

std::string checkpoint_dir_name(std::int64_t step);  // "step-00000120"

// This rank's part in a checkpoint.
struct CheckpointShard {
  int stage = 0, stages = 1;
  bool writer = true;  // writes its stage's model file (replica 0 of the stage)
  bool lead = true;    // world rank 0: folder, trainer.json, index.json, latest
  // ZeRO-1: every replica writes the optimizer state it owns to
  // optim-stage-K-of-S-shard-J-of-R.safetensors; shards = 1: the writer writes the whole state.
  int shard = 0, shards = 1;
};

// Writes a checkpoint of `state.step` under `dir` as described above; collective over `world`
// (nullptr: a single process). Returns the final step folder on every rank.
// `model_meta`: extra __metadata__ of the model files (the resolved [model], model_metadata.h).
std::string save_checkpoint(const std::string& dir, ParamSet& ps, AdamW& opt, const TrainerState& state,
                            std::int64_t keep_last, const CheckpointShard& shard, par::Communicator* world,
                            const Metadata& model_meta = {});

// The folder `latest` names under `dir`, or nullopt when there is no `latest` file. Throws when
// `latest` is malformed or names a missing folder.
std::optional<std::string> latest_checkpoint(const std::string& dir);

// The step folders (step-NNNNNNNN) under `dir`, oldest first; none when `dir` does not exist.
std::vector<std::string> step_folders(const std::string& dir);

// Where a resumed run continues: the newest step folder of `dir` that is complete (holds its
// index.json; a save publishes a folder only once complete, by renaming it into place), whether or
// not `latest` names it (a full disk can fail the `latest` update after the folder was published).
// Its checksums are verified when it is loaded. `note`: what was passed over, "" if nothing.
struct ResumePoint {
  std::string step_dir;
  std::string note;
};
std::optional<ResumePoint> find_resume_checkpoint(const std::string& dir);

// Before a run starts: `dir` must be a writable folder, or creatable (its nearest existing parent
// a writable folder). Tried with a probe file that is removed again; nothing is created.
// Throws sk::ConfigError "checkpoint.dir '<dir>': <why>".
void check_checkpoint_dir_usable(const std::string& dir);

// A fresh run refuses a `dir` that holds `latest` or any step folder (it would overwrite them):
// throws sk::ConfigError naming them.
void refuse_existing_run(const std::string& dir);

// Re-reads every file listed in <step_dir>/index.json and checks sizes, byte ranges and crc32.
void verify_checkpoint(const std::string& step_dir);

// Loads this rank's parameters + buffers into `ps` and its optimizer state into `opt` by name
// (any layout wrote it) and returns trainer.json. `model_names`: every parameter / buffer name of
// the whole model (a checkpoint tensor outside it means another model: error); empty = ps's own.
TrainerState load_checkpoint(const std::string& step_dir, ParamSet& ps, AdamW& opt,
                             const std::set<std::string>& model_names = {});

// What `path` names for loading weights: a safetensors file (as is) or a checkpoint step folder
// (a checkpoint dir: the step folder its `latest` names). Throws a one-line sk::Error otherwise.
std::string resolve_model_weights(const std::string& path);

// Loads every parameter and buffer of `ps` (finalized) by reference name from
// resolve_model_weights(path) — a safetensors file, or the model files of a (multi-file)
// checkpoint, whose checksums are verified: each must be present with its shape, and no tensor
// may name something outside `model_names` (empty: outside ps). Returns what was read.
std::string load_model_weights(const std::string& path, ParamSet& ps, const std::set<std::string>& model_names = {});

// Every model tensor of a checkpoint step folder (all its model files, verified first) by name;
// `metadata` (optional) gets the first model file's __metadata__ (stage 0's).
TensorMap read_checkpoint_model(const std::string& step_dir, Metadata* metadata = nullptr);

// `sinkhorn checkpoint export`: every model tensor of a checkpoint (step folder or dir) merged
// into one safetensors file by reference name (PyTorch's load_state_dict takes it). Verifies the
// checkpoint first. Returns the number of tensors written.
std::size_t export_checkpoint(const std::string& path, const std::string& out);

// `sinkhorn checkpoint inspect`: a report (step, layout, files, tensors with dtype, shape, bytes)
// after verifying every checksum; throws sk::Error on damage.
std::string inspect_checkpoint(const std::string& path);

}  // namespace sk
