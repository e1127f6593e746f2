// index.json / trainer.json parsing (trainer/checkpoint/checkpoint_json.h): a well-formed pair
// parses; every structural fault — including file names that would reach outside the step folder
// and byte ranges past a file — is a one-line sk::Error naming the file and the field.
#include <gtest/gtest.h>

#include <string>

#include "model/core/error.h"
#include "trainer/checkpoint/checkpoint_json.h"

namespace sk {
namespace {

const std::string kIndex = R"({"format_version": 1, "step": 3, "world_size": 1,
  "files": {"model.safetensors": {"bytes": 100, "crc32": "0123abcd"},
            "trainer.json": {"bytes": 10, "crc32": "ffffffff"}},
  "tensors": {"w": {"file": "model.safetensors", "dtype": "F32", "shape": [2], "byte_range": [92, 100],
                    "crc32": "00000000"}}})";

std::string index_error(const std::string& text) {
  try {
    parse_checkpoint_index(text, "ck/step-00000003/index.json");
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("ck/step-00000003/index.json"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  }
  return "";
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "missing '" << (part) << "' in: " << (msg)

TEST(CheckpointIndex, ParsesAWellFormedIndex) {
  const CheckpointIndex i = parse_checkpoint_index(kIndex, "index.json");
  ASSERT_EQ(i.files.size(), 2u);
  ASSERT_EQ(i.tensors.size(), 1u);
  EXPECT_EQ(i.tensors[0].name, "w");
  EXPECT_EQ(i.tensors[0].file, "model.safetensors");
  EXPECT_EQ(i.tensors[0].begin, 92u);
  EXPECT_EQ(i.tensors[0].end, 100u);
}

TEST(CheckpointIndex, RejectsStructuralFaults) {
  EXPECT_HAS(index_error("not json"), "not valid JSON");
  EXPECT_HAS(index_error("[1, 2]"), "expected a JSON object");
  EXPECT_HAS(index_error(replaced(kIndex, "\"format_version\": 1", "\"format_version\": 2")), "format_version 2 is not 1");
  EXPECT_HAS(index_error(replaced(kIndex, "\"format_version\": 1", "\"format_version\": \"1\"")), "format_version");
  EXPECT_HAS(index_error(replaced(kIndex, "\"files\": {", "\"files\": 5, \"x\": {")), "'files' must be an object");
  // A name that would read outside the step folder.
  EXPECT_HAS(index_error(replaced(kIndex, "\"trainer.json\": {", "\"../../etc/passwd\": {\"bytes\": 1, \"crc32\": \"00000000\"}, \"trainer.json\": {")),
             "not a plain file name");
  EXPECT_HAS(index_error(replaced(kIndex, "\"bytes\": 100", "\"bytes\": -100")), "'bytes' must be an integer >= 0");
  EXPECT_HAS(index_error(replaced(kIndex, "\"0123abcd\"", "\"xyz\"")), "'crc32' must be 8 lower-case hex digits");
  EXPECT_HAS(index_error(replaced(kIndex, "[92, 100]", "[92, 101]")), "byte range [92, 101) past the end");
  EXPECT_HAS(index_error(replaced(kIndex, "[92, 100]", "[93, 92]")), "past the end");
  EXPECT_HAS(index_error(replaced(kIndex, "[92, 100]", "[92]")), "'byte_range' must be [begin, end]");
  EXPECT_HAS(index_error(replaced(kIndex, "\"file\": \"model.safetensors\"", "\"file\": \"other.safetensors\"")),
             "file 'other.safetensors' is not listed");
  EXPECT_HAS(index_error(replaced(kIndex, "\"file\": \"model.safetensors\",", "")), "'file' must be a string");
  EXPECT_HAS(index_error(replaced(kIndex, "\"trainer.json\"", "\"trainer2.json\"")),
             "does not list model.safetensors and trainer.json");
  // A repeated key is ambiguous (which byte count is right?).
  EXPECT_HAS(index_error(replaced(kIndex, "\"bytes\": 100,", "\"bytes\": 100, \"bytes\": 7,")), "key 'bytes' appears twice");
}

const std::string kTrainer = R"({"format_version": 1, "step": 6, "tokens_seen": 768,
  "sampler": {"seed": 42, "step": 6}, "seed": 42, "world_size": 2, "optimizer_shards": 1, "config": {"x": 1}})";

std::string trainer_error(const std::string& text) {
  try {
    int shards = 0;
    parse_trainer_json(text, "t/trainer.json", &shards);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("t/trainer.json"), std::string::npos) << m;
    return m;
  }
  return "";
}

TEST(TrainerJson, ParsesAndRejects) {
  int shards = 0;
  const TrainerState s = parse_trainer_json(kTrainer, "trainer.json", &shards);
  EXPECT_EQ(s.step, 6);
  EXPECT_EQ(s.tokens_seen, 768);
  EXPECT_EQ(s.sampler_seed, 42u);
  EXPECT_EQ(s.sampler_step, 6u);
  EXPECT_EQ(s.world_size, 2);
  EXPECT_EQ(shards, 1);
  EXPECT_EQ(s.config["x"], 1);
  EXPECT_HAS(trainer_error("{"), "not valid JSON");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"step\": 6,", "\"step\": -6,")), "'step' = -6 must be >= 0");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"step\": 6,", "\"step\": 6.5,")), "'step' must be an integer");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"step\": 6,", "\"step\": 18446744073709551615,")), "out of range");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"sampler\": {\"seed\": 42, \"step\": 6}", "\"sampler\": 3")),
             "'sampler' must be an object");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"world_size\": 2", "\"world_size\": 0")), "'world_size' = 0 must be >= 1");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"optimizer_shards\": 1", "\"optimizer_shards\": 2000000000")),
             "implausibly large");
  EXPECT_HAS(trainer_error(replaced(kTrainer, ", \"config\": {\"x\": 1}", "")), "'config' is missing");
  EXPECT_HAS(trainer_error(replaced(kTrainer, "\"seed\": 42, \"world", "\"seed\": 42, \"seed\": 43, \"world")),
             "key 'seed' appears twice");
}

}  // namespace
}  // namespace sk
