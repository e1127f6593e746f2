// sampler.h — deterministic, resumable choice of training windows.
//
// A sample is a window of T+1 consecutive tokens (inputs = first T, targets = last T). Global
// sample g = step * B + i (i < B, B the global batch) is a pure function of (seed, g):
//
//   random_windows   start = uniform in [0, n - T - 1], hashed from (seed, g)  (the reference's
//                    enwik8 example draws windows this way)
//   shuffled_chunks  the corpus is cut into C = (n - 1) / T back-to-back windows; epoch e = g / C
//                    visits them in a permutation of its own (seeded by (seed, e)); window starts
//                    are c * T, so consecutive windows share one token (the last target)
//
// Data parallelism: of each global batch, DP rank r of R takes samples [r*B/R, (r+1)*B/R), so the
// replicas see disjoint shares and together exactly the single-process batch (B % R == 0).
//
// The cursor is plain data (the trainer saves it in trainer.json): restoring it reproduces the
// following batches exactly, whatever the number of ranks before and after.
//
// Segments (token shards, data/token_corpus.h): the sampled range may be the concatenation of
// segments of sizes n_0, n_1, ... whose windows must not cross a boundary. Offsets are then
// positions in the concatenation, and
//   random_windows   draws u uniform in [0, S), S = sum_k max(0, n_k - T) valid starts, and maps it
//                    to segment k (prefix sums) at start u - S_<k
//   shuffled_chunks  C = sum_k C_k, C_k = (n_k - 1) / T windows of segment k back to back; one
//                    permutation of all C per epoch
// One segment of n tokens gives exactly the offsets of the plain Sampler(n, cfg).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sk::data {

enum class SampleOrder { random_windows, shuffled_chunks };
const char* sample_order_name(SampleOrder o);
SampleOrder parse_sample_order(const std::string& s);  // "random_windows" | "shuffled_chunks"

struct SamplerConfig {
  std::int64_t seq_len = 0;       // T (a sample has T + 1 tokens)
  std::int64_t global_batch = 0;  // B, over all data-parallel ranks
  std::uint64_t seed = 0;
  int dp_rank = 0;
  int dp_size = 1;
  SampleOrder order = SampleOrder::random_windows;
};

struct SamplerCursor {
  std::uint64_t seed = 0;  // checked on restore
  std::uint64_t step = 0;  // the next global batch to produce
};

class Sampler {
 public:
  // corpus_tokens: size of the span sampled from. Throws DataError for bad sizes.
  Sampler(std::int64_t corpus_tokens, const SamplerConfig& cfg);
  // Over the concatenation of segments (CorpusView::segments()); no window crosses a boundary.
  // A segment shorter than T + 1 holds no window; throws DataError when none holds one.
  Sampler(const std::vector<std::int64_t>& segment_tokens, const SamplerConfig& cfg);

  // Start offsets of this rank's samples of the next global batch; advances the cursor.
  std::vector<std::int64_t> next();
  // The same for an arbitrary step, without touching the cursor.
  std::vector<std::int64_t> offsets_at(std::uint64_t step) const;
  // Start offset of global sample g.
  std::int64_t offset_of(std::uint64_t g) const;

  SamplerCursor cursor() const { return {cfg_.seed, step_}; }
  void restore(const SamplerCursor& c);  // throws DataError if the seed differs

  std::int64_t local_batch() const { return cfg_.global_batch / cfg_.dp_size; }
  std::int64_t chunks() const { return chunks_; }  // C (shuffled_chunks)
  std::int64_t starts() const { return starts_; }  // S: valid window starts (random_windows)
  const SamplerConfig& config() const { return cfg_; }

 private:
  const std::vector<std::int64_t>& permutation(std::uint64_t epoch) const;
  // Position in the concatenation of the idx-th item of a per-segment count (starts or chunks),
  // `stride` apart inside a segment.
  std::int64_t locate(const std::vector<std::int64_t>& prefix, std::int64_t idx, std::int64_t stride) const;
  SamplerConfig cfg_;
  std::int64_t n_;
  std::int64_t chunks_ = 0;
  std::int64_t starts_ = 0;
  std::vector<std::int64_t> seg_begin_;     // where each segment starts in the concatenation
  std::vector<std::int64_t> start_prefix_;  // valid starts of segments < k (size = segments + 1)
  std::vector<std::int64_t> chunk_prefix_;  // chunks of segments < k
  std::uint64_t step_ = 0;
  mutable std::uint64_t perm_epoch_ = ~std::uint64_t{0};  // epoch of the cached permutation
  mutable std::vector<std::int64_t> perm_;
};

}  // namespace sk::data
