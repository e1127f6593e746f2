// libFuzzer target: the JSON files of a checkpoint step folder, index.json and trainer.json
// (trainer/checkpoint/checkpoint_json.h). Rejections are sk::Error; anything else is a finding.
// A parsed index must satisfy what verify_checkpoint relies on: plain file names, byte ranges
// inside the listed file sizes.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>

#include "fuzz_util.h"
#include "model/core/error.h"
#include "trainer/checkpoint/checkpoint_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sk;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const CheckpointIndex idx = parse_checkpoint_index(text, "fuzz/index.json");
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& f : idx.files) {
      if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == "." || f.name == "..") std::abort();
      sizes[f.name] = f.bytes;
    }
    for (const auto& t : idx.tensors)
      if (!sizes.count(t.file) || t.begin > t.end || t.end > sizes[t.file]) std::abort();
  } catch (const Error&) {
  }
  try {
    int shards = 0;
    const TrainerState s = parse_trainer_json(text, "fuzz/trainer.json", &shards);
    if (s.step < 0 || s.world_size < 1 || shards < 1) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
