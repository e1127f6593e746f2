// batch.h — assembling token batches as host int64 arrays.
//
//   TokenBatch b = assemble_batch(span, sampler.next(), T);   // [B, T+1]
//   b.inputs()  -> [B, T] = b[:, :-1]      b.targets() -> [B, T] = b[:, 1:]
//
// uniform_token_batch draws a synthetic batch (uniform ids in [0, vocab)) from (seed, step) alone:
// the benchmark workload's "fresh random tokens every step".
#pragma once
#include <cstdint>
#include <vector>

#include "data/byte_dataset.h"
#include "data/token_corpus.h"

namespace sk::data {

struct TokenBatch {
  std::int64_t rows = 0;  // B
  std::int64_t cols = 0;  // T + 1
  std::vector<std::int64_t> tokens;  // row-major [rows, cols]

  std::int64_t at(std::int64_t r, std::int64_t c) const { return tokens[static_cast<std::size_t>(r * cols + c)]; }
  std::vector<std::int64_t> inputs() const;   // [rows, cols - 1]: every row without its last token
  std::vector<std::int64_t> targets() const;  // [rows, cols - 1]: every row without its first token
};

// One row per offset: tokens [offset, offset + seq_len + 1) of `span`. Throws DataError when a
// window runs past the span.
TokenBatch assemble_batch(TokenSpan span, const std::vector<std::int64_t>& offsets, std::int64_t seq_len);
// The same over a corpus view (bytes or token shards, data/token_corpus.h): row r is tokens
// [offsets[r], offsets[r] + seq_len + 1) of the view. Throws DataError when a window runs outside
// the view or across a shard boundary (Sampler(view.segments(), cfg) never draws one).
TokenBatch assemble_batch(const CorpusView& view, const std::vector<std::int64_t>& offsets, std::int64_t seq_len);

// [rows, cols] uniform ids in [0, vocab), element (r, c) a pure function of (seed, step, r, c).
TokenBatch uniform_token_batch(std::uint64_t seed, std::uint64_t step, std::int64_t rows, std::int64_t cols,
                               std::int64_t vocab);

}  // namespace sk::data
