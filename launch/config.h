// config.h — RunConfig and the reference-case config: plain structs with defaults.
// No TOML library types here: config_toml.cpp is the only translation unit that includes the
// TOML parser (tests/check_includes.sh enforces it).
//
// Errors are ONE line: "<file>[:line] [table]: key = value: rule", e.g.
//   small.toml:20 [model]: bucket_sise = 32: unknown key (did you mean bucket_size?)
//   small.toml [train]: lr = -0.001 (from --set train.lr=-1e-3): must be > 0
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
// [train] keys, in the order documented above (also the accepted set: any other key is an error).
// A [train] table may be absent (all defaults); seq_len = 0 is resolved to model.max_seq_len.

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
  std::vector<std::string> features;  // informational
};
struct ReferenceCaseConfig {
  std::optional<LMConfig> model;    // kind lm / embeddings
  std::optional<LMConfig> encoder;  // kind encoder_decoder
  std::optional<LMConfig> decoder;
  CaseInfo info;
};
// Tables [model] or [encoder] + [decoder], and [case]; tables named check_* are ignored.
ReferenceCaseConfig load_reference_case_config(const std::string& path);

// A command-line override "table.key=value" (--set). The value is read as a TOML value
// (3e-4, true, [1, 2], "text"); anything that is not valid TOML is taken as a bare string.
struct ConfigOverride {
  std::string table, key, value;
  std::string text;  // as given, for messages
};
// Throws sk::Error "--set <text>: <rule>" unless text is "<table>.<key>=<value>" with non-empty parts.
ConfigOverride parse_override(const std::string& text);

// Rules over the parsed values (config_validate.cpp); `file` names the config file in messages.
// validate_run_config calls validate_lm_config(cfg.model, "<file> [model]") and checks [train].
void validate_run_config(const RunConfig& cfg);
void validate_train_config(const TrainConfig& t, const LMConfig& model, const std::string& file);
void validate_reference_case_config(const ReferenceCaseConfig& c, const std::string& file);

}  // namespace sk
