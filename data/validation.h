// validation.h — which windows an evaluation reads, and bits per byte.
//
// The validation windows depend only on the split's size(s) and seq_len — never on train.seed —
// so the same model gets the same validation loss under any seed, rank count or resume.
//
//   count = 0   the whole split in back-to-back windows: segment k (a shard's part of the split,
//               CorpusView::segments()) holds C_k = (n_k - 1) / T windows starting at
//               0, T, 2T, ... of the segment, so every token but the segment's first is a target
//               exactly once, except the last (n_k - 1) % T tokens of each segment (fewer than T).
//   count > 0   `count` windows spread evenly over the S = sum_k max(0, n_k - T) valid starts:
//               window i starts at valid start floor(i * S / count) (i = 0 … count-1), mapped into
//               its segment as the sampler maps starts (data/sampler.h). Deterministic, seed-free.
// Every returned offset is a window of T + 1 tokens inside one segment, as assemble_batch needs.
// Throws DataError when no segment holds a window (n_k < T + 1 for all k).
#pragma once
#include <cstdint>
#include <vector>

namespace sk::data {

std::vector<std::int64_t> validation_offsets(const std::vector<std::int64_t>& segment_tokens, std::int64_t seq_len,
                                             std::int64_t count_or_0);
// One contiguous split of corpus_tokens tokens (a bytes corpus).
std::vector<std::int64_t> validation_offsets(std::int64_t corpus_tokens, std::int64_t seq_len, std::int64_t count_or_0);

// Bits per byte of a mean loss of `loss_nats_per_token` (natural log, as the cross-entropy) when a
// token stands for `bytes_per_token` bytes of text on average: loss / ln 2 / bytes_per_token.
// Byte tokens: bytes_per_token = 1. A tokenizer: UTF-8 bytes of the decoded validation split /
// its tokens (data/tokenizer.h bytes_per_token). Throws DataError unless bytes_per_token > 0.
double bits_per_byte(double loss_nats_per_token, double bytes_per_token);

}  // namespace sk::data
