// config.h — RunConfig and the reference-case config: plain structs with defaults.
// No toml++ types here: config_toml.cpp is the only translation unit that includes toml++.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/lm/config.h"

namespace sk {

// [train] of a run / benchmark config (shared/bench/*.toml): what one training step is.
struct TrainConfig {
  std::int64_t batch_size = 4;
  std::int64_t seq_len = 0;  // 0 -> model.max_seq_len
  double lr = 3e-4;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  double weight_decay = 0.0;
  double pkm_lr = 1e-2;      // learning rate of PKM value tables (their own parameter group)
  std::int64_t steps = 100;          // training steps of `sinkhorn train`
  std::int64_t warmup_steps = 3;     // benchmark: untimed steps first
  std::int64_t measure_steps = 10;   // benchmark: timed steps (median reported)
  std::uint64_t seed = 0;
};

struct RunConfig {
  std::string path;  // file it came from (for error messages)
  LMConfig model;
  TrainConfig train;
};

// Loads a run/benchmark TOML file, applies `overrides` ("table.key=value", e.g. "train.lr=3e-4"),
// validates, and throws sk::Error "<file>: [table] key = value: rule" on any bad input.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

// A reference test case folder's config.toml (shared/reference/README.md).
struct CaseInfo {
  std::string name;
  std::string kind = "lm";        // "lm" | "embeddings" | "encoder_decoder"
  std::int64_t batch_size = 0;
  std::int64_t seq_len = 0;
  std::int64_t context_seq_len = 0;
  std::string autopad = "none";   // "none" | "left" | "right"
  std::string loss = "cross_entropy";  // "cross_entropy" | "mse_probe"
  std::string mode = "eval";
  bool train_expected = false;
  std::int64_t seed = 0;
};
struct ReferenceCaseConfig {
  std::optional<LMConfig> model;    // kind lm / embeddings
  std::optional<LMConfig> encoder;  // kind encoder_decoder
  std::optional<LMConfig> decoder;
  CaseInfo info;
};
ReferenceCaseConfig load_reference_case_config(const std::string& path);

}  // namespace sk
