// sampler.cpp — window offsets from (seed, global sample index); see sampler.h.
#include "data/sampler.h"

#include <algorithm>
#include <numeric>

#include "data/data_error.h"
#include "data/hash.h"

namespace sk::data {
namespace {
// Stream ids keep the hash families of different uses apart.
constexpr std::uint64_t kStreamWindows = 0x57494e444f57ull;  // "WINDOW"
constexpr std::uint64_t kStreamShuffle = 0x5348554646ull;    // "SHUFF"
}  // namespace

const char* sample_order_name(SampleOrder o) {
  return o == SampleOrder::random_windows ? "random_windows" : "shuffled_chunks";
}

SampleOrder parse_sample_order(const std::string& s) {
  if (s == "random_windows") return SampleOrder::random_windows;
  if (s == "shuffled_chunks") return SampleOrder::shuffled_chunks;
  throw DataError("unknown sample order '" + s + "' (expected random_windows or shuffled_chunks)");
}

Sampler::Sampler(std::int64_t corpus_tokens, const SamplerConfig& cfg)
    : Sampler(std::vector<std::int64_t>{corpus_tokens}, cfg) {}

Sampler::Sampler(const std::vector<std::int64_t>& segment_tokens, const SamplerConfig& cfg) : cfg_(cfg), n_(0) {
  auto s = [](auto v) { return std::to_string(v); };
  if (cfg.seq_len < 1) throw DataError("sampler: seq_len must be >= 1, got " + s(cfg.seq_len));
  if (cfg.global_batch < 1) throw DataError("sampler: batch size must be >= 1, got " + s(cfg.global_batch));
  if (cfg.dp_size < 1 || cfg.dp_rank < 0 || cfg.dp_rank >= cfg.dp_size)
    throw DataError("sampler: data-parallel rank " + s(cfg.dp_rank) + " of " + s(cfg.dp_size) + " is invalid");
  if (cfg.global_batch % cfg.dp_size != 0)
    throw DataError("sampler: global batch " + s(cfg.global_batch) + " is not divisible by the " + s(cfg.dp_size) +
                    " data-parallel replicas");
  if (segment_tokens.empty()) throw DataError("sampler: no segments to sample from");
  start_prefix_.push_back(0);
  chunk_prefix_.push_back(0);
  for (std::int64_t len : segment_tokens) {
    if (len < 0) throw DataError("sampler: negative segment size " + s(len));
    seg_begin_.push_back(n_);
    n_ += len;
    const std::int64_t st = len >= cfg.seq_len + 1 ? len - cfg.seq_len : 0;
    const std::int64_t ch = len >= cfg.seq_len + 1 ? (len - 1) / cfg.seq_len : 0;
    start_prefix_.push_back(start_prefix_.back() + st);
    chunk_prefix_.push_back(chunk_prefix_.back() + ch);
  }
  starts_ = start_prefix_.back();
  chunks_ = chunk_prefix_.back();
  if (starts_ == 0) {
    if (segment_tokens.size() == 1)
      throw DataError("sampler: the corpus has " + s(n_) + " tokens, fewer than one sample of seq_len + 1 = " +
                      s(cfg.seq_len + 1));
    throw DataError("sampler: none of the " + s(segment_tokens.size()) + " segments (" + s(n_) +
                    " tokens) holds one sample of seq_len + 1 = " + s(cfg.seq_len + 1) + " tokens");
  }
}

std::int64_t Sampler::locate(const std::vector<std::int64_t>& prefix, std::int64_t idx, std::int64_t stride) const {
  // The segment k with prefix[k] <= idx < prefix[k + 1] (empty segments are skipped by upper_bound).
  const auto it = std::upper_bound(prefix.begin(), prefix.end(), idx);
  const auto k = static_cast<std::size_t>(it - prefix.begin() - 1);
  return seg_begin_[k] + (idx - prefix[k]) * stride;
}

const std::vector<std::int64_t>& Sampler::permutation(std::uint64_t epoch) const {
  if (perm_epoch_ != epoch) {
    perm_.resize(static_cast<std::size_t>(chunks_));
    std::iota(perm_.begin(), perm_.end(), std::int64_t{0});
    // Fisher-Yates with hashed draws: position i swaps with j uniform in [0, i].
    const std::uint64_t stream = mix64(kStreamShuffle ^ epoch);
    for (std::int64_t i = chunks_ - 1; i > 0; --i) {
      auto j = static_cast<std::int64_t>(bounded(hash3(cfg_.seed, stream, static_cast<std::uint64_t>(i)),
                                                 static_cast<std::uint64_t>(i + 1)));
      std::swap(perm_[static_cast<std::size_t>(i)], perm_[static_cast<std::size_t>(j)]);
    }
    perm_epoch_ = epoch;
  }
  return perm_;
}

std::int64_t Sampler::offset_of(std::uint64_t g) const {
  if (cfg_.order == SampleOrder::random_windows) {
    // One segment: valid starts [0, n - T - 1], the start itself.
    const auto u = static_cast<std::int64_t>(bounded(hash3(cfg_.seed, kStreamWindows, g), static_cast<std::uint64_t>(starts_)));
    return locate(start_prefix_, u, 1);
  }
  const auto c = static_cast<std::uint64_t>(chunks_);
  const auto& perm = permutation(g / c);
  return locate(chunk_prefix_, perm[static_cast<std::size_t>(g % c)], cfg_.seq_len);
}

std::vector<std::int64_t> Sampler::offsets_at(std::uint64_t step) const {
  const std::int64_t local = local_batch();
  std::vector<std::int64_t> out(static_cast<std::size_t>(local));
  const std::uint64_t first = step * static_cast<std::uint64_t>(cfg_.global_batch) +
                              static_cast<std::uint64_t>(cfg_.dp_rank) * static_cast<std::uint64_t>(local);
  for (std::int64_t i = 0; i < local; ++i) out[static_cast<std::size_t>(i)] = offset_of(first + static_cast<std::uint64_t>(i));
  return out;
}

std::vector<std::int64_t> Sampler::next() { return offsets_at(step_++); }

void Sampler::restore(const SamplerCursor& c) {
  if (c.seed != cfg_.seed)
    throw DataError("sampler: cannot restore a cursor of seed " + std::to_string(c.seed) + " into a sampler of seed " +
                    std::to_string(cfg_.seed));
  step_ = c.step;
}

}  // namespace sk::data
