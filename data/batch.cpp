// batch.cpp — batch assembly and synthetic batches.
#include "data/batch.h"

#include <string>

#include "data/data_error.h"
#include "data/hash.h"

namespace sk::data {
namespace {

std::vector<std::int64_t> drop_column(const TokenBatch& b, std::int64_t skip_first) {
  if (b.cols < 2) throw DataError("token batch: need at least 2 columns to split inputs/targets, got " + std::to_string(b.cols));
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(b.rows * (b.cols - 1)));
  for (std::int64_t r = 0; r < b.rows; ++r)
    for (std::int64_t c = skip_first; c < b.cols - 1 + skip_first; ++c) out.push_back(b.at(r, c));
  return out;
}

constexpr std::uint64_t kStreamUniform = 0x554e49464f524dull;  // "UNIFORM"

}  // namespace

std::vector<std::int64_t> TokenBatch::inputs() const { return drop_column(*this, 0); }
std::vector<std::int64_t> TokenBatch::targets() const { return drop_column(*this, 1); }

TokenBatch assemble_batch(TokenSpan span, const std::vector<std::int64_t>& offsets, std::int64_t seq_len) {
  if (seq_len < 1) throw DataError("assemble_batch: seq_len must be >= 1, got " + std::to_string(seq_len));
  TokenBatch b;
  b.rows = static_cast<std::int64_t>(offsets.size());
  b.cols = seq_len + 1;
  b.tokens.resize(static_cast<std::size_t>(b.rows * b.cols));
  for (std::int64_t r = 0; r < b.rows; ++r) {
    const std::int64_t off = offsets[static_cast<std::size_t>(r)];
    if (off < 0 || off + b.cols > span.size)
      throw DataError("assemble_batch: window [" + std::to_string(off) + ", " + std::to_string(off + b.cols) +
                      ") runs outside the corpus of " + std::to_string(span.size) + " tokens");
    std::int64_t* dst = b.tokens.data() + r * b.cols;
    for (std::int64_t c = 0; c < b.cols; ++c) dst[c] = span.data[off + c];
  }
  return b;
}

TokenBatch assemble_batch(const CorpusView& view, const std::vector<std::int64_t>& offsets, std::int64_t seq_len) {
  if (seq_len < 1) throw DataError("assemble_batch: seq_len must be >= 1, got " + std::to_string(seq_len));
  TokenBatch b;
  b.rows = static_cast<std::int64_t>(offsets.size());
  b.cols = seq_len + 1;
  b.tokens.resize(static_cast<std::size_t>(b.rows * b.cols));
  for (std::int64_t r = 0; r < b.rows; ++r)
    view.read(offsets[static_cast<std::size_t>(r)], b.cols, b.tokens.data() + r * b.cols);
  return b;
}

TokenBatch uniform_token_batch(std::uint64_t seed, std::uint64_t step, std::int64_t rows, std::int64_t cols,
                               std::int64_t vocab) {
  if (rows < 0 || cols < 0) throw DataError("uniform_token_batch: negative shape");
  if (vocab < 1) throw DataError("uniform_token_batch: vocabulary must be >= 1, got " + std::to_string(vocab));
  TokenBatch b;
  b.rows = rows;
  b.cols = cols;
  b.tokens.resize(static_cast<std::size_t>(rows * cols));
  const std::uint64_t stream = mix64(kStreamUniform ^ step);
  for (std::size_t i = 0; i < b.tokens.size(); ++i)
    b.tokens[i] = static_cast<std::int64_t>(bounded(hash3(seed, stream, i), static_cast<std::uint64_t>(vocab)));
  return b;
}

}  // namespace sk::data
