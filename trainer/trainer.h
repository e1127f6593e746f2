// trainer.h — `sinkhorn train`: a real training run of the Sinkhorn LM on byte tokens, on one
// process or a grid of pipeline stages × data-parallel replicas (docs/architecture.md "The job,
// end to end").
//
// Layout: P pipeline stages × R replicas = the world. Stage s holds a contiguous range of layers
// (trainer/stage.h; the first stage also the embeddings, the last the head and the loss); every
// rank builds and allocates only its stage's parameters, gradients and AdamW state.
//
// One step (global batch B, A = grad_accum micro-batches per replica, b = B / (R·A) rows each):
//   replica r takes global samples [r·B/R, (r+1)·B/R) (data::Sampler); micro-batch k holds rows
//   [r·B/R + k·b, … + b), and every draw of a row is keyed by its global sample id (Context::key),
//   so the rows and their randomness are the same on every layout with the same b;
//   the stage runs the schedule's program (parallel/schedule.h, 1F1B or GPipe) through the
//   pipeline executor (trainer/pipeline.h): forwards and backwards of the A micro-batches, with
//   activations and gradients sent between neighbouring stages; each micro-batch's loss gradient
//   is scaled by 1/A;
//   gradients are averaged over the stage's replicas (one all-reduce of the flat buffer);
//   weight-tied modules held by several stages have their replicas' gradients summed over the
//   pipeline;
//   the global gradient norm is a sum of per-parameter sums of squares taken in the whole model's
//   parameter order (each tied parameter once), moved exactly between stages, so every layout
//   computes the same value; a step whose norm or loss is not finite is skipped (no update);
//   clipping, AdamW at lr_at(step) (PKM value tables at their own lr) on each stage's parameters.
//   The step's loss is the mean of all R·A micro-batch losses, summed in global order.
// Same config, same numbers: a pipeline-only layout (R = 1) gives bit-identical losses and
// parameters to one process; with R > 1 the gradient all-reduce sums in another order (equal up to
// float rounding, ~1e-7 relative), as does the pipeline sum of tied gradients.
// random_truncate (causal models): each micro-batch is first cut by the autoregressive wrapper's
// random truncation (per row a length L in 2 … T keyed by the row's global sample id), rows
// left-padded to the longest L; padding positions are masked inputs and never targets.
// PKM BatchNorm normalises each micro-batch (as PyTorch does); its running statistics are averaged
// over the replicas before every evaluation and checkpoint.
//
// Rank 0 prints a progress line every log interval (with the layout, the measured pipeline bubble
// next to the theoretical one, and the largest memory over all ranks), writes metrics.jsonl,
// evaluates (forward-only through the pipeline, split over the replicas), prints generated
// samples (token by token through replica 0's pipeline) and writes checkpoints
// (trainer/checkpoint/checkpoint.h: one model / optimizer file per stage; any layout resumes any
// other). --resume continues bit-identically from the newest complete checkpoint. A fresh run with
// init_from starts from those weights (by reference name); the optimizer state, sampler and step
// still start fresh.
//
// Failure behaviour (README "Failure behaviour"):
//   * before anything is written: the sizes must fit in memory (trainer/memory_check.h), the
//     checkpoint dir must be writable, a fresh run refuses a dir that holds step folders or `latest`;
//     then rank 0 locks the dir for the run's life (trainer/checkpoint/lock.h);
//   * a step whose loss or global gradient norm is not finite is skipped on every rank (no update,
//     BatchNorm statistics restored, counted); max_skipped_steps in a row throw DivergedError
//     (exit 3) and `latest` stays the last good checkpoint; no checkpoint is written while steps
//     are being skipped, nor one holding a non-finite value; a finite loss above 3 ln(num_tokens)
//     (worse than a uniform guess) is warned about;
//   * a stop signal (trainer/stop_signal.h) is agreed on by every rank after the step: the run
//     writes a checkpoint (when checkpoint_dir is set) and throws StoppedError (exit 4).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sampler.h"
#include "data/token_corpus.h"
#include "model/core/dtype.h"
#include "model/lm/autoregressive.h"
#include "model/layers/layer.h"
#include "model/lm/config.h"
#include "parallel/communicator.h"
#include "parallel/schedule.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer.h"

namespace sk {

struct TrainSpec {
  std::string name = "run";  // for the console header
  LMConfig model;
  // Optimisation
  std::int64_t batch_size = 0;  // global batch per step (all ranks, all micro-batches)
  std::int64_t seq_len = 0;
  std::int64_t steps = 0;       // the run ends after this many steps
  std::int64_t grad_accum = 1;
  double grad_clip = 1.0;       // 0 = off
  std::int64_t max_skipped_steps = 10;  // consecutive non-finite steps (skipped) before DivergedError
  bool random_truncate = false; // random truncation of each micro-batch (causal models; see above)
  Precision precision = Precision::fp32;  // Linear GEMM operands (Context::gemm_precision)
  AdamWConfig optim;
  LrSchedule schedule;
  std::uint64_t seed = 0;       // parameter init, sampler, RNG keys
  // Data: `dataset` ([data] format, paths, val_paths, ...; data/token_corpus.h). With no paths it
  // is one byte-token file, `data_path`, split by `val_fraction`.
  data::DatasetSpec dataset;
  std::string data_path;
  double val_fraction = 0.05;
  data::SampleOrder order = data::SampleOrder::random_windows;
  std::string tokenizer;  // SentencePiece model: samples decoded, prompts encoded, bits per byte; "" = raw tokens
  // Logs, evaluation, samples
  std::int64_t log_interval = 10;
  double peak_tflops = 0;  // peak TFLOP/s of one device for MFU; 0 = a known GPU's from the table (trainer/flops.h), none on CPU
  std::string log_dir;  // "" = no metrics.jsonl
  std::int64_t eval_interval = 0, eval_batches = 4;  // eval_batches = 0: the whole validation split
  bool tensorboard = false;  // TensorBoard event files in log_dir (rank 0)
  std::int64_t sample_interval = 0, sample_len = 128;
  std::string sample_prompt;
  double sample_temperature = 1.0;
  SampleFilter sample_filter = SampleFilter::top_k;  // logit filter of generation
  double sample_filter_thres = 0.9;                  // its threshold, in (0, 1)
  std::optional<std::int64_t> sample_eos;            // a sample ends after this token
  bool console = true;  // rank 0 prints progress (tests turn it off)
  // Checkpoints
  std::string checkpoint_dir;  // "" = none
  std::int64_t checkpoint_interval = 0, keep_last = 3;
  bool resume = false;       // continue from checkpoint_dir's newest complete checkpoint (must exist)
  bool resume_auto = false;  // continue when checkpoint_dir holds one, else start fresh
  std::string init_from;  // fresh runs: load parameters + buffers by reference name from this model.safetensors /
                          // step folder / checkpoint dir before step 1 (load_model_weights); ignored on resume
  // Pipeline (world = pipeline_stages × replicas; the communicators come with TrainComms)
  int pipeline_stages = 1;
  par::ScheduleKind pipeline_schedule = par::ScheduleKind::one_f_one_b;
  std::vector<std::int64_t> stage_layers;  // layers per stage (sum = depth); empty = balanced (parallel/grid.h)
  // Data-parallel gradient reduction (parallel/grad_sync.h).
  double bucket_mb = 25;          // bucket size of the overlapped reduction; 0 = one bucket after backward
  int zero_stage = 0;             // 1: ZeRO-1 (optimizer state and update sharded over the replicas)
  bool grad_reduce_bf16 = false;  // bf16 gradient messages (half the bytes, rounded sums)
  // Where
  Device device = Device::cpu;
  nlohmann::json config_snapshot;  // saved in trainer.json
};

// This rank's place in the grid and its communicators (any may be nullptr when its group has one rank).
struct TrainComms {
  par::Communicator* world = nullptr;  // every rank (host values: agreement, metrics)
  par::Communicator* dp = nullptr;     // the replicas of this rank's stage
  par::Communicator* pp = nullptr;     // the stages of this rank's replica
  int stage = 0, replica = 0;
};

struct TrainResult {
  std::int64_t start_step = 0;      // step the run started from (0, or the checkpoint's)
  std::int64_t end_step = 0;        // steps done at the end
  std::vector<double> losses;       // training loss of each step run here (averaged over ranks)
  std::vector<double> grad_norms;   // before clipping
  std::vector<double> val_losses;   // each evaluation, in order (mean loss per token)
  std::vector<double> val_bpb;      // bits per byte of each evaluation (when bytes per token is known)
  std::vector<std::string> samples; // generated texts (rank 0)
  std::int64_t tokens_seen = 0;
  std::string last_checkpoint;      // folder of the last checkpoint written ("" if none)
  // Layout and measurements of this rank.
  std::vector<std::int64_t> stage_layers;  // layers per stage
  std::int64_t stage_params = 0;      // elements of this stage's parameters
  std::int64_t model_params = 0;      // of the whole model (tied parameters once)
  double theoretical_bubble = 0;      // (P-1)/(M+P-1)
  std::int64_t skipped_steps = 0;     // steps skipped for a non-finite loss or gradient norm
  bool resumed = false;               // continued from a checkpoint
  std::int64_t optimizer_state_bytes = 0;  // AdamW state held by this rank (m and v)
  std::int64_t grad_bytes = 0;        // this stage's gradient bytes (f32)
  std::int64_t comm_bytes_per_step = 0;  // gradient-reduction bytes this rank sent per step (last step)
  double comm_wait_s = 0;             // exposed gradient-reduction wait, whole run
};

// Runs the training on this rank of the grid (spec.pipeline_stages stages; the communicators move
// tensors of spec.device, `world` host values). Throws sk::Error / data::DataError for bad input
// before writing anything.
TrainResult run_training(const TrainSpec& spec, const TrainComms& comms);
// One stage, data-parallel over `dp` (nullptr or size 1: one process).
TrainResult run_training(const TrainSpec& spec, par::Communicator* dp = nullptr);

}  // namespace sk
