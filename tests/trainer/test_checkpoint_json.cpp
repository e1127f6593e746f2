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

// The one-line message of the error that f throws, "" when it throws none; it must name `where`.
template <class F>
std::string error_of(F&& f, const std::string& where) {
  try {
    f();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(where), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  }
  return "";
}

std::string index_error(const std::string& text) {
  const std::string where = "ck/step-00000003/index.json";
  return error_of([&] { parse_checkpoint_index(text, where); }, where);
}

struct Fault {
  const char* from;
  const char* to;
  const char* expect;
};

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
  // Each: one edit of the good index -> the error it must give.
  const Fault faults[] = {
      {"\"format_version\": 1", "\"format_version\": 3", "format_version 3 is not"},
      {"\"format_version\": 1", "\"format_version\": \"1\"", "format_version"},
      {"\"files\": {", "\"files\": 5, \"x\": {", "'files' must be an object"},
      // A name that would read outside the step folder.
      {"\"trainer.json\": {", "\"../../etc/passwd\": {\"bytes\": 1, \"crc32\": \"00000000\"}, \"trainer.json\": {",
       "not a plain file name"},
      {"\"bytes\": 100", "\"bytes\": -100", "'bytes' must be an integer >= 0"},
      {"\"0123abcd\"", "\"xyz\"", "'crc32' must be 8 lower-case hex digits"},
      {"[92, 100]", "[92, 101]", "byte range [92, 101) past the end"},
      {"[92, 100]", "[93, 92]", "past the end"},
      {"[92, 100]", "[92]", "'byte_range' must be [begin, end]"},
      {"\"file\": \"model.safetensors\"", "\"file\": \"other.safetensors\"", "file 'other.safetensors' is not listed"},
      {"\"file\": \"model.safetensors\",", "", "'file' must be a string"},
      {"\"trainer.json\"", "\"trainer2.json\"", "does not list a model file (model.safetensors) and trainer.json"},
      // A repeated key is ambiguous (which byte count is right?).
      {"\"bytes\": 100,", "\"bytes\": 100, \"bytes\": 7,", "key 'bytes' appears twice"},
  };
  for (const Fault& f : faults) EXPECT_HAS(index_error(replaced(kIndex, f.from, f.to)), f.expect);
}

const std::string kTrainer = R"({"format_version": 1, "step": 6, "tokens_seen": 768,
  "sampler": {"seed": 42, "step": 6}, "seed": 42, "world_size": 2, "optimizer_shards": 1, "config": {"x": 1}})";

std::string trainer_error(const std::string& text) {
  int shards = 0;
  return error_of([&] { parse_trainer_json(text, "t/trainer.json", &shards); }, "t/trainer.json");
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
  const Fault faults[] = {
      {"\"step\": 6,", "\"step\": -6,", "'step' = -6 must be >= 0"},
      {"\"step\": 6,", "\"step\": 6.5,", "'step' must be an integer"},
      {"\"step\": 6,", "\"step\": 18446744073709551615,", "out of range"},
      {"\"sampler\": {\"seed\": 42, \"step\": 6}", "\"sampler\": 3", "'sampler' must be an object"},
      {"\"world_size\": 2", "\"world_size\": 0", "'world_size' = 0 must be >= 1"},
      {"\"optimizer_shards\": 1", "\"optimizer_shards\": 2000000000", "implausibly large"},
      {", \"config\": {\"x\": 1}", "", "'config' is missing"},
      {"\"seed\": 42, \"world", "\"seed\": 42, \"seed\": 43, \"world", "key 'seed' appears twice"},
  };
  for (const Fault& f : faults) EXPECT_HAS(trainer_error(replaced(kTrainer, f.from, f.to)), f.expect);
}

}  // namespace
}  // namespace sk
