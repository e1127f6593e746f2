// sample.h — `sinkhorn sample`: text generation from trained weights.
//
// Builds the LM of `model` (causal; byte tokens: num_tokens >= 256, or the ids of `prompt_tokens`
// from a tokenizer), loads every parameter and buffer by reference name from `weights` (a
// model.safetensors file, a checkpoint step folder or a checkpoint dir — then its `latest`;
// trainer/checkpoint/checkpoint.h resolve_model_weights) after checking the file's [model]
// metadata against `model` (trainer/checkpoint/model_metadata.h: the differing key is named), and
// continues the prompt's bytes with AutoregressiveWrapper::generate: `len` tokens, softmax
// temperature, top_k / top_p filter, stopping after `eos` when set. The Philox seed of the
// sampling is `seed` (same seed -> same text). The prompt keeps only its last max_seq_len - 1
// bytes as the model's context; the returned prompt is the whole prompt.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/core/dtype.h"
#include "model/lm/autoregressive.h"
#include "model/lm/config.h"

namespace sk {

struct SampleSpec {
  LMConfig model;
  std::string weights;
  std::string prompt = "\n";  // at least one byte (byte tokens)
  std::vector<std::int64_t> prompt_tokens;  // when not empty: the prompt as token ids (a tokenizer's), used instead
  std::int64_t len = 128;
  double temperature = 1.0;
  SampleFilter filter = SampleFilter::top_k;
  double filter_thres = 0.9;
  std::optional<std::int64_t> eos;
  std::uint64_t seed = 0;
  Device device = Device::cpu;
};

struct SampleResult {
  std::string weights_file;          // the model.safetensors read
  std::vector<std::int64_t> tokens;  // generated tokens (len, or fewer when eos ended the row)
  std::vector<std::string> notes;    // how foreign weights were taken (conversions, a stripped prefix)
};

// Checks the spec (one-line sk::Error naming the option and rule), loads the weights, generates.
SampleResult run_sample(const SampleSpec& spec);

}  // namespace sk
