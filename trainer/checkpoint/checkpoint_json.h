// checkpoint_json.h — parsing the JSON files of a checkpoint step folder (index.json,
// trainer.json) from their bytes, with every structural rule checked, so that a damaged or hostile
// file is a one-line sk::Error, never a crash or a read outside the folder. checkpoint.cpp reads
// the files and checks checksums; tests/fuzz fuzzes these functions directly.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/checkpoint/checkpoint.h"

namespace sk {

// 2: one model / optimizer file per pipeline stage (and per replica with ZeRO-1), tensor dtypes and
// shapes in index.json, the layout in trainer.json. 1: one model.safetensors (still read).
constexpr int kCheckpointFormatVersion = 2;

struct CheckpointIndex {
  struct File {
    std::string name;  // a plain file name inside the step folder
    std::uint64_t bytes = 0;
    std::string crc32;  // 8 lower-case hex digits
  };
  struct TensorEntry {
    std::string name, file;
    std::uint64_t begin = 0, end = 0;  // absolute byte range in `file`, within its size
    std::string crc32;
    std::string dtype;                 // F32 | BF16 | I64 | I32 | U8
    std::vector<std::int64_t> shape;   // its element count times the dtype's size is end - begin
  };
  int version = 0;
  std::vector<File> files;
  std::vector<TensorEntry> tensors;
};

// index.json: {"format_version": 1 | 2, "files": {name: {"bytes", "crc32", ...}}, "tensors":
// {name: {"file", "dtype", "shape", "byte_range": [b, e], "crc32"}}, ...}. File names must be plain
// names (no '/', not '.' or '..'); tensors must name a listed file, lie within its size and hold
// exactly shape x dtype bytes; a model file ("model*": model.safetensors in version 1) and
// trainer.json must be listed; no key may repeat. `where` names the file in messages.
CheckpointIndex parse_checkpoint_index(std::string_view text, const std::string& where);

// trainer.json: step (>= 0), tokens_seen, sampler {seed, step}, seed, world_size (>= 1), config;
// version 1: optimizer_shards (>= 1, returned in *shards); version 2: layout {pipeline_stages,
// data_parallel, stage_layers} (stages x replicas = world size) and an optional data fingerprint.
// `where` names the file in messages.
TrainerState parse_trainer_json(std::string_view text, const std::string& where, int* shards);

}  // namespace sk
