// config.h — RunConfig and the reference-case config: plain structs with defaults.
// No TOML library types here: config_toml.cpp is the only translation unit that includes the
// TOML parser (tests/check_includes.sh enforces it).
//
// Errors are ONE line: "<file>[:line] [table]: key = value: rule", e.g.
//   small.toml:20 [model]: bucket_sise = 32: unknown key (did you mean bucket_size?)
//   small.toml [train]: lr = -0.001 (from --set train.lr=-1e-3): must be > 0
// thrown as sk::ConfigError (exit 2). Within a table, an unknown key is reported before a missing
// required one (a misspelt required key names the misspelling, not "missing").
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
  // `sinkhorn train` only (the benchmark ignores these):
  std::int64_t grad_accum = 1;       // micro-batches per step; batch_size is the GLOBAL batch of a step
                                     // (all ranks, all micro-batches): divisible by ranks * grad_accum
  double grad_clip = 1.0;            // clip gradients to this global L2 norm; 0 = no clipping
  std::int64_t lr_warmup_steps = 0;  // linear learning-rate warm-up over the first N steps
  std::string lr_decay = "cosine";   // after warm-up: "cosine" (to min_lr at lr_decay_steps) | "constant"
  std::int64_t lr_decay_steps = 0;   // step where the cosine reaches min_lr; 0 -> steps
  double min_lr = 0.0;               // floor of the cosine decay (pkm_lr is scaled by the same factor)
  bool random_truncate = false;      // each micro-batch: the AR wrapper's random truncation (causal models only)
  std::string precision = "fp32";    // Linear GEMM operands: "fp32" | "bf16" (fp32 accumulation, f32 master weights)
  std::int64_t max_skipped_steps = 10;  // a step with a non-finite loss or gradient norm is skipped (no
                                        // update); this many in a row stop the run (exit 3, diverged)
};
// [train] keys, in the order documented above (also the accepted set: any other key is an error).
// A [train] table may be absent (all defaults); seq_len = 0 is resolved to model.max_seq_len.

// [data] of a run config (`sinkhorn train`): a text file read as byte tokens (vocabulary 256), or
// pre-tokenized shards (data/token_corpus.h). launch/dataset_spec.h turns it into a data::DatasetSpec.
struct DataConfig {
  std::string format = "bytes";  // "bytes": one text file, a token per byte | "tokens": token shards
  std::string path;              // required by `sinkhorn train`: the first of `paths` (bytes: the file).
                                 // Relative paths in the file are taken from the config file's folder,
                                 // relative --set paths from the cwd
  std::vector<std::string> paths;      // `path` as given: a string or an array of strings, each a file or a
                                       // glob (tokens), resolved as above
  std::vector<std::string> val_paths;  // tokens: validation shards (same forms); empty = hold out val_fraction
  double val_fraction = 0.05;  // last fraction of the tokens held out for validation, in [0, 1)
  std::string order = "random_windows";  // "random_windows" | "shuffled_chunks" (data/sampler.h)
  std::string tokenizer;       // SentencePiece model ("" = none): samples decode, prompts encode with it;
                               // model.num_tokens must be >= its vocabulary. Relative like path
};

// [log]: console progress, metrics.jsonl, evaluation and sampling.
struct LogConfig {
  std::int64_t interval = 10;         // progress line + metrics.jsonl record every N steps (and the last)
  double peak_tflops = 0;             // peak TFLOP/s of one device for MFU; 0 = known GPUs' from a table, none on CPU
  std::string dir;                    // folder of metrics.jsonl; "" = console only
  std::int64_t eval_interval = 0;     // validation loss every N steps (and at the end); 0 = never
  std::int64_t eval_batches = 4;      // global batches of validation windows per evaluation; 0 = the whole
                                      // split in back-to-back windows (data/validation.h)
  std::int64_t sample_interval = 0;   // generate text every N steps (and at the end); 0 = never
  std::int64_t sample_len = 128;      // bytes generated per sample
  std::string sample_prompt;          // prompt; "" = the first seq_len / 2 bytes of the validation split
  double sample_temperature = 1.0;    // softmax temperature
  std::string sample_filter = "top_k";  // logit filter before sampling: "top_k" | "top_p"
  double sample_filter_thres = 0.9;     // the filter's threshold, in (0, 1) (0.9: the reference's default)
  std::int64_t sample_eos = -1;         // a row stops after sampling this token; -1 = none, else in [0, num_tokens)
  bool tensorboard = false;             // also write TensorBoard event files into `dir` (trainer/tensorboard.h)
};

// [checkpoint]: periodic checkpoints (docs/architecture.md "Checkpoints").
struct CheckpointConfig {
  std::string dir;                  // "" = no checkpoints
  std::int64_t interval = 0;        // every N steps; 0 = only at the end (the end is always saved)
  std::int64_t keep_last = 3;       // keep the newest N step folders; 0 = keep all
  std::string init_from;            // fresh runs: parameters + buffers by reference name from a model.safetensors,
                                    // a step folder or a checkpoint dir (its latest); "" = random init;
                                    // ignored with --resume. Relative paths as data.path
};

// [parallel]: the process grid of `sinkhorn train` (world = pipeline_stages × data-parallel replicas).
struct ParallelConfig {
  std::int64_t pipeline_stages = 1;         // stages of the layer pipeline (1 = no pipeline)
  std::string schedule = "1f1b";            // "1f1b" | "gpipe" (parallel/schedule.h)
  std::vector<std::int64_t> stage_layers;   // layers per stage (sum = depth); [] = balanced
  bool allow_shared_gpu = false;            // GPU ranks may share a device (then MPI, not NCCL)
  double timeout_s = 300;                   // a collective taking longer ends the job
  double bucket_mb = 25;                    // gradient buckets reduced while backward runs; 0 = one after backward
  std::int64_t zero_stage = 0;              // 0 | 1 (ZeRO-1: optimizer state sharded over the replicas)
  std::string grad_reduce_dtype = "fp32";   // "fp32" | "bf16": dtype of gradient messages
};

struct RunConfig {
  std::string path;  // file it came from (for error messages)
  LMConfig model;
  TrainConfig train;
  DataConfig data;
  LogConfig log;
  CheckpointConfig checkpoint;
  ParallelConfig parallel;
  std::string text;                    // the config file as read (snapshot saved in checkpoints)
  std::vector<std::string> overrides;  // the --set texts applied, in order
  // Every key of every table, "table.key" -> its effective value as text (given, overridden or
  // default; relative paths resolved), in reading order: what ranks compare at start-up
  // (launch/cli.cpp) and what trainer.json records.
  std::vector<std::pair<std::string, std::string>> resolved;
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
// [data] / [log] / [checkpoint] rules that need no files (the trainer checks the data file itself).
void validate_run_tables(const RunConfig& cfg);
// What only `sinkhorn train` needs: data.path set, num_tokens >= 256 (byte tokens), a causal LM is
// not required, the world size divisible by parallel.pipeline_stages, batch_size divisible by
// data-parallel replicas * grad_accum. Throws one-line sk::Error.
void validate_for_training(const RunConfig& cfg, int world_size);
void validate_reference_case_config(const ReferenceCaseConfig& c, const std::string& file);

}  // namespace sk
