// autoregressive.h — AutoregressiveWrapper (model-spec §19): next-token loss with an ignore index,
// random truncation, and sampling-based generation, around an Autopadder(lm, pad_left).
//
// Loss: x i64 [B, T+1] -> inputs x[:, :-1], targets x[:, 1:], mask[:, :-1]; mean cross-entropy over
// targets != ignore_index (ignore_index defaults to pad_value; with the defaults token 0 is never a
// target, quirk Q5).
// Random truncation (D10 corrected): per row a length L uniform in 2 … n−1 (n = T+1) from Philox
// (Context::key(id, kSiteTruncate), element = row); each row keeps its first L tokens, rows are
// left-padded with pad_value to the longest L, and the mask is the caller's mask truncated the same
// way (all true when none), false on the padding.
// Generation (eval mode, no gradient): repeatedly run the padded LM on the last max_seq_len tokens,
// filter the last position's logits (top_k / top_p / none), sample from softmax(filtered / T)
// with Philox (Context::key(id, kSiteSample), element = step·B + row) and append. D15 corrected:
// each row stops on its own when it samples eos_token (later positions of that row are pad_value
// with mask false), the loop ends when every row has stopped, and top_k keeps at least one logit.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/lm/autopad.h"

namespace sk {

struct ARConfig {
  std::int64_t pad_value = 0;
  std::optional<std::int64_t> ignore_index;  // None -> pad_value
  bool pad_left = true;
};

enum class SampleFilter : std::uint8_t { top_k, top_p, none };

struct GenerateOptions {
  std::int64_t seq_len = 0;                // tokens to generate (at most)
  std::optional<std::int64_t> eos_token;
  double temperature = 1.0;
  SampleFilter filter = SampleFilter::top_k;
  double filter_thres = 0.9;
};

// Logit filters on one row (host). Removed entries become -inf.
// top_k: keeps the max(1, ⌊(1 − thres)·V⌋) largest (ties: lower index first).
void filter_top_k(std::vector<float>& logits, double thres);
// top_p: sorts descending and removes an entry when the cumulative softmax probability before it
// already exceeds 1 − thres (the first is always kept) — the reference's convention.
void filter_top_p(std::vector<float>& logits, double thres);
// Samples an index from softmax(logits / temperature) with the uniform u in [0, 1).
std::int64_t sample_from_logits(const std::vector<float>& logits, double temperature, float u);

struct Truncated {
  Tensor tokens;  // i64 [B, Lmax]
  Tensor mask;    // u8 [B, Lmax]
};
// Random truncation of x [B, n] (and its mask) as described above; row b's length from element b of
// `key`'s draw (a per-row key must have rows == B).
Truncated random_truncate(const Tensor& x, const Tensor& mask, std::int64_t pad_value, RngKey key);

// The Philox key of the random truncation of `rows` rows by an AutoregressiveWrapper around an LM
// built under `lm_prefix` (what AutoregressiveWrapper::truncate_key returns), for callers that
// truncate without a wrapper (a pipeline stage builds its micro-batches itself).
RngKey ar_truncate_key(const std::string& lm_prefix, const Context& c, std::int64_t rows);

// The Philox key of generation's sampling (element step·B + row) for an LM built under
// `lm_prefix`, as AutoregressiveWrapper::generate draws it.
RngKey ar_sample_key(const std::string& lm_prefix, const Context& c);

// The generation loop of AutoregressiveWrapper::generate with the model behind `last_logits`:
// called with the current window (tokens i64 and mask u8, row-major [B, w], w <= max_len) it
// returns the logits of the window's last position, row-major [B, V]. Rows start from `start`
// ([B, t0] row-major, t0 >= 1) and `mask` (empty: all true); returns the new tokens [B, n].
using LastLogitsFn = std::function<std::vector<float>(const std::vector<std::int64_t>& tokens,
                                                      const std::vector<std::uint8_t>& mask, std::int64_t B,
                                                      std::int64_t w)>;
std::vector<std::int64_t> generate_tokens(const std::vector<std::int64_t>& start, const std::vector<std::uint8_t>& mask,
                                          std::int64_t B, const GenerateOptions& o, RngKey key, std::int64_t max_len,
                                          std::int64_t pad_value, const LastLogitsFn& last_logits, std::int64_t* steps_out);

struct ARLossStash {
  AutopadStash pad;
  Tensor logits;   // [B·T, V]
  Tensor targets;  // i64 [B·T]
  CrossEntropyOut ce;
  std::int64_t B = 0, T = 0;
};

class AutoregressiveWrapper {
 public:
  static constexpr std::uint64_t kSiteTruncate = 1;
  static constexpr std::uint64_t kSiteSample = 2;

  explicit AutoregressiveWrapper(SinkhornLM& lm, const ARConfig& cfg = {});

  // x i64 [B, T+1], mask u8 [B, T+1] or undefined -> loss f32 [1].
  Tensor loss(const Tensor& x, const Tensor& mask, bool randomly_truncate, ARLossStash& st, const Context& c) const;
  // Backward of `dloss · loss` into the LM's parameter gradients.
  void loss_backward(ARLossStash& st, const Context& c, float dloss = 1.f);

  // start i64 [B, t] (t >= 1), mask u8 [B, t] or undefined (all true) -> new tokens i64 [B, n],
  // n <= o.seq_len. Runs in eval mode whatever c.training says.
  Tensor generate(const Tensor& start, const Tensor& mask, const GenerateOptions& o, const Context& c) const;

  std::int64_t ignore_index() const { return cfg_.ignore_index ? *cfg_.ignore_index : cfg_.pad_value; }
  // The Philox key of the random truncation drawn by loss(..., randomly_truncate = true, ..., c),
  // for callers that truncate themselves (the trainer keeps its own ignore index).
  // Per row: the lengths of rows micro .. micro + rows - 1 (global samples) do not depend on how
  // the batch is split.
  RngKey truncate_key(const Context& c, std::int64_t rows) const { return ar_truncate_key(lm_.prefix(), c, rows); }
  Autopadder& padded() { return pad_; }

 private:
  SinkhornLM& lm_;
  ARConfig cfg_;
  Autopadder pad_;
  std::uint64_t id_ = 0;
};

}  // namespace sk
