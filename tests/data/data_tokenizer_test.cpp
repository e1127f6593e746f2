// SentencePiece tokenizer on real text (the shipped Shakespeare): trained model round trips
// exactly, block-wise encoding equals whole-text encoding, piece byte counts equal decoded sizes,
// bytes per token of a shard view, and errors naming the file.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "data/data_error.h"
#include "data/token_corpus.h"
#include "data/tokenizer.h"
#include "tests/tools/test_util.h"

namespace sk::data {
namespace {

std::string shakespeare() {
  std::ifstream in(std::string(SK_SOURCE_DIR) + "/launch/configs/data/tinyshakespeare.txt", std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// One model for the suite (training takes a few seconds).
class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new sk::test::TempDir();
    TokenizerTrainSpec s;
    s.inputs = {std::string(SK_SOURCE_DIR) + "/launch/configs/data/tinyshakespeare.txt"};
    s.vocab_size = 512;
    s.out = *dir_ / "tok.model";
    train_tokenizer(s);
  }
  static void TearDownTestSuite() { delete dir_; }
  static sk::test::TempDir* dir_;
};
sk::test::TempDir* TokenizerTest::dir_ = nullptr;

TEST_F(TokenizerTest, RoundTripsRealTextExactly) {
  Tokenizer tok(*dir_ / "tok.model");
  EXPECT_EQ(tok.vocab_size(), 512);
  const std::string text = shakespeare();
  ASSERT_GT(text.size(), 1000000u);
  const auto ids = tok.encode(text);
  // A real vocabulary compresses: well under one token per byte.
  EXPECT_LT(static_cast<double>(ids.size()), 0.6 * static_cast<double>(text.size()));
  for (auto id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, 512);
  }
  EXPECT_TRUE(tok.decode(ids) == text);
  // Not in the training text, multi-byte UTF-8 and control bytes: byte fallback keeps them.
  const std::string odd = "caf\xc3\xa9 \xe2\x82\xac 100\tx\x01y\n\n  two  spaces\r\n";
  EXPECT_EQ(tok.decode(tok.encode(odd)), odd);
  std::int64_t sum = 0;
  for (auto id : ids) sum += tok.piece_bytes()[static_cast<std::size_t>(id)];
  EXPECT_EQ(sum, static_cast<std::int64_t>(text.size()));
}

TEST_F(TokenizerTest, BlocksCutAfterANewlineEncodeLikeTheWhole) {
  Tokenizer tok(*dir_ / "tok.model");
  const std::string text = shakespeare().substr(0, 200000);
  const auto whole = tok.encode(text);
  std::vector<std::int64_t> blocks;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = std::min(text.size(), at + 7000);
    const std::size_t nl = text.find('\n', end);
    end = nl == std::string::npos ? text.size() : nl + 1;
    const auto part = tok.encode(std::string_view(text).substr(at, end - at));
    blocks.insert(blocks.end(), part.begin(), part.end());
    at = end;
  }
  EXPECT_EQ(blocks, whole);
  EXPECT_EQ(tok.encode_blocks(text, 3), whole);
  EXPECT_EQ(tok.encode_blocks(text, 1), whole);
  EXPECT_TRUE(tok.encode_blocks("", 2).empty());
}

TEST_F(TokenizerTest, BytesPerTokenOfAShardView) {
  Tokenizer tok(*dir_ / "tok.model");
  const std::string text = shakespeare().substr(0, 300000);
  const auto ids = tok.encode(text);
  const std::string shard = *dir_ / "val.bin";
  write_llmc_shard(shard, ids.data(), static_cast<std::int64_t>(ids.size()), tok.vocab_size());
  auto corpus = std::make_shared<TokenCorpus>(TokenCorpus::open_shards({shard}, ShardChecks{tok.vocab_size(), 0}));
  CorpusView view(corpus, 0, corpus->size());
  EXPECT_DOUBLE_EQ(tok.bytes_per_token(view), static_cast<double>(text.size()) / static_cast<double>(ids.size()));
}

TEST_F(TokenizerTest, ErrorsNameTheFile) {
  Tokenizer tok(*dir_ / "tok.model");
  try {
    tok.decode({1, 512});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot decode id 512 (position 1)"), std::string::npos) << e.what();
  }
  const std::string junk = *dir_ / "junk.model";
  std::ofstream(junk) << "this is not a model";
  for (const std::string& f : {junk, *dir_ / "missing.model"}) {
    try {
      Tokenizer t(f);
      FAIL() << f;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("tokenizer '" + f + "'"), std::string::npos) << e.what();
    }
  }
  TokenizerTrainSpec s;
  s.inputs = {*dir_ / "missing.txt"};
  s.vocab_size = 512;
  s.out = *dir_ / "x.model";
  EXPECT_THROW(train_tokenizer(s), DataError);
}

}  // namespace
}  // namespace sk::data
