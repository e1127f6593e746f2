// Byte dataset: mmap, split, errors; batch assembly and synthetic batches.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "data/batch.h"
#include "data/byte_dataset.h"
#include "data/data_error.h"

namespace sk::data {
namespace {

// A temporary file removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/sk_data_test_XXXXXX";
    int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path = tmpl;
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

TEST(ByteDataset, MapsBytesAndSplits) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text.push_back(static_cast<char>(i % 251));
  TempFile f(text);
  ByteDataset ds(f.path, 0.1);
  ASSERT_EQ(ds.all().size, 1000);
  EXPECT_EQ(ds.train().size, 900);
  EXPECT_EQ(ds.val().size, 100);
  EXPECT_EQ(ds.train().data, ds.all().data);
  EXPECT_EQ(ds.val().data, ds.all().data + 900);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(ds.all().data[i], static_cast<std::uint8_t>(i % 251));
}

TEST(ByteDataset, NoValidationSplit) {
  TempFile f("hello world");
  ByteDataset ds(f.path, 0.0);
  EXPECT_EQ(ds.train().size, 11);
  EXPECT_EQ(ds.val().size, 0);
}

TEST(ByteDataset, EmptyFile) {
  TempFile f("");
  ByteDataset ds(f.path, 0.5);
  EXPECT_EQ(ds.all().size, 0);
}

TEST(ByteDataset, MissingFileNamesPath) {
  try {
    ByteDataset ds("/nonexistent/dir/enwik8", 0.1);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/enwik8"), std::string::npos) << e.what();
  }
}

TEST(ByteDataset, BadFraction) {
  TempFile f("abc");
  EXPECT_THROW(ByteDataset(f.path, 1.0), DataError);
  EXPECT_THROW(ByteDataset(f.path, -0.1), DataError);
}

TEST(ByteDataset, DirectoryIsRejected) { EXPECT_THROW(ByteDataset("/tmp", 0.1), DataError); }

TEST(Batch, AssembleWindowsAndShift) {
  std::string text = "abcdefghijklmnopqrstuvwxyz";
  TempFile f(text);
  ByteDataset ds(f.path, 0.0);
  TokenBatch b = assemble_batch(ds.train(), {0, 10, 21}, 4);
  ASSERT_EQ(b.rows, 3);
  ASSERT_EQ(b.cols, 5);
  EXPECT_EQ(b.at(0, 0), 'a');
  EXPECT_EQ(b.at(1, 4), 'o');
  EXPECT_EQ(b.at(2, 4), 'z');
  auto in = b.inputs(), tg = b.targets();
  ASSERT_EQ(in.size(), 12u);
  ASSERT_EQ(tg.size(), 12u);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) {
      EXPECT_EQ(in[r * 4 + c], b.at(r, c));
      EXPECT_EQ(tg[r * 4 + c], b.at(r, c + 1));
    }
  EXPECT_THROW(assemble_batch(ds.train(), {22}, 4), DataError);
  EXPECT_THROW(assemble_batch(ds.train(), {-1}, 4), DataError);
}

TEST(Batch, UniformTokensDeterministicAndInRange) {
  TokenBatch a = uniform_token_batch(7, 3, 4, 65, 256);
  TokenBatch b = uniform_token_batch(7, 3, 4, 65, 256);
  TokenBatch c = uniform_token_batch(7, 4, 4, 65, 256);
  TokenBatch d = uniform_token_batch(8, 3, 4, 65, 256);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, c.tokens);
  EXPECT_NE(a.tokens, d.tokens);
  std::vector<int> hist(256, 0);
  TokenBatch big = uniform_token_batch(1, 0, 64, 1024, 256);
  for (auto t : big.tokens) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, 256);
    ++hist[static_cast<std::size_t>(t)];
  }
  // 65536 draws over 256 ids: every id appears, none far off the mean 256.
  for (int h : hist) {
    EXPECT_GT(h, 150);
    EXPECT_LT(h, 380);
  }
  EXPECT_THROW(uniform_token_batch(1, 0, 2, 2, 0), DataError);
}

}  // namespace
}  // namespace sk::data
