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
  const SamplerConfig& config() const { return cfg_; }

 private:
  const std::vector<std::int64_t>& permutation(std::uint64_t epoch) const;
  SamplerConfig cfg_;
  std::int64_t n_;
  std::int64_t chunks_ = 0;
  std::uint64_t step_ = 0;
  mutable std::uint64_t perm_epoch_ = ~std::uint64_t{0};  // epoch of the cached permutation
  mutable std::vector<std::int64_t> perm_;
};

}  // namespace sk::data
