// `sinkhorn sample` through run_cli: with no config (the model from the weights' metadata), the
// same text as with the config, a config that differs named by key, and a SentencePiece tokenizer
// encoding the prompt and decoding the continuation.
#include <gtest/gtest.h>

#include <fstream>

#include "data/tokenizer.h"
#include "launch/cli.h"
#include "model/core/error.h"
#include "model/core/param.h"
#include "model/lm/sinkhorn_lm.h"
#include "tests/model/model_test_util.h"
#include "tests/tools/test_util.h"
#include "trainer/checkpoint/model_metadata.h"

namespace sk {
namespace {

using sk::test::TempDir;

// The small causal LM of the model tests, with a vocabulary of `vocab`.
LMConfig tiny(std::int64_t vocab) {
  LMConfig m = sk::test::tiny_lm(true);
  m.num_tokens = vocab;
  return m;
}

std::string model_toml(std::int64_t vocab, const std::string& extra = "") {
  return "[model]\nnum_tokens = " + std::to_string(vocab) +
         "\ndim = 16\nmax_seq_len = 32\ndepth = 2\nheads = 2\nbucket_size = 8\ncausal = true\n" +
         extra + "[train]\nseq_len = 32\n";
}

std::string save_weights(const TempDir& d, std::int64_t vocab) {
  ParamSet ps;
  SinkhornLM lm(tiny(vocab), ps);
  ps.finalize(Device::cpu, 11);
  const std::string f = d / "model.safetensors";
  save_params_file(f, ps, true, model_metadata(tiny(vocab)));
  return f;
}

std::string sample(const std::vector<std::string>& args) {
  std::vector<std::string> a = {"sample"};
  a.insert(a.end(), args.begin(), args.end());
  ::testing::internal::CaptureStdout();
  try {
    run_cli(a);
  } catch (...) {
    ::testing::internal::GetCapturedStdout();
    throw;
  }
  return ::testing::internal::GetCapturedStdout();
}

TEST(SampleCli, NoConfigTakesTheModelFromTheMetadata) {
  TempDir d;
  const std::string w = save_weights(d, 256);
  const std::string a = sample({"--weights", w, "--prompt", "To be", "--len", "12", "--seed", "5"});
  EXPECT_EQ(a.size(), 5u + 12u);
  EXPECT_EQ(a.substr(0, 5), "To be");
  std::ofstream(d / "run.toml") << model_toml(256, "n_top_buckets = 1\n");
  EXPECT_EQ(sample({d / "run.toml", "--weights", w, "--prompt", "To be", "--len", "12", "--seed", "5"}), a);
  std::ofstream(d / "other.toml") << model_toml(256);  // the default n_top_buckets = 2
  try {
    sample({d / "other.toml", "--weights", w});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[model] n_top_buckets = 2 in the config, 1 in the weights' metadata"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(sample({"--weights", w, "--set", "model.dim=64"}), Error);
}

TEST(SampleCli, TokenizerEncodesThePromptAndDecodesTheText) {
  TempDir d;
  {
    std::ifstream in(std::string(SK_SOURCE_DIR) + "/launch/configs/data/tinyshakespeare.txt", std::ios::binary);
    std::string text(20000, '\0');
    in.read(text.data(), 20000);
    std::ofstream(d / "text.txt", std::ios::binary) << text;
  }
  data::TokenizerTrainSpec s;
  s.inputs = {d / "text.txt"};
  s.vocab_size = 400;
  s.out = d / "tok.model";
  data::train_tokenizer(s);
  const data::Tokenizer tok(s.out);
  const std::string w = save_weights(d, 400);
  const std::string out = sample({"--weights", w, "--tokenizer", s.out, "--prompt", "ROMEO:", "--len", "8", "--seed", "2"});
  ASSERT_EQ(out.substr(0, 6), "ROMEO:");
  // The continuation is the decoding of 8 tokens: re-encoding it gives them back (lossless model).
  const auto ids = tok.encode(out.substr(6));
  EXPECT_EQ(tok.decode(ids), out.substr(6));
  EXPECT_LE(ids.size(), 8u * 4u);
  // A vocabulary larger than num_tokens is refused, naming the option.
  const std::string w256 = save_weights(d, 256);
  try {
    sample({"--weights", w256, "--tokenizer", s.out});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--tokenizer " + s.out + ": its vocabulary has 400 pieces, more than model.num_tokens = 256"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace sk
