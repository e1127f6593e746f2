// trainer.h — `sinkhorn train`: a real training run of the Sinkhorn LM on byte tokens, one process
// or data-parallel over a communicator (docs/architecture.md "The job, end to end").
//
// One step (global batch B over R data-parallel ranks and A = grad_accum micro-batches):
//   this rank's B/R sample offsets (data::Sampler, deterministic, resumable), cut into A
//   micro-batches of b = B/(R*A) rows; for each: tokens [b, T+1] -> AutoregressiveWrapper loss
//   (mean next-token cross-entropy) with Context{training, seed, step,
//   micro = global sample id of the micro-batch's first row}, backward scaled by 1/A;
//   gradient all-reduce (average over ranks) of the flat gradient buffer; global-norm clipping;
//   AdamW at lr_at(step); zero the gradients.
// Micro-batch k of rank r holds global samples [r*B/R + k*b, ... + b): the same rows and RNG keys
// whenever R*A is the same, so a 2-rank run equals a 1-rank run with twice the grad_accum to the
// last bit of randomness, and equals any layout up to float summation order when the model draws
// no per-batch randomness (dropout 0).
// random_truncate (causal models): each micro-batch is first cut by the wrapper's random_truncate
// (per row a length L in 2 … T, keyed by the wrapper's Philox site and the micro-batch's Context,
// so it resumes and splits over ranks like dropout), rows left-padded to the longest L; padding
// positions are masked inputs and never targets (every real byte, 0 included, still is one).
//
// Rank 0 prints a progress line every log interval, writes metrics.jsonl, evaluates (validation
// loss over a fixed set of windows, split over the ranks), prints generated samples and writes
// checkpoints (trainer/checkpoint/checkpoint.h). --resume continues bit-identically from `latest`.
// A fresh run with init_from starts from those weights (every parameter and buffer by reference
// name, e.g. a PyTorch state_dict export) instead of the seeded initialisation; the optimizer
// state, sampler and step still start fresh.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sampler.h"
#include "model/core/dtype.h"
#include "model/lm/autoregressive.h"
#include "model/layers/layer.h"
#include "model/lm/config.h"
#include "parallel/communicator.h"
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
  bool random_truncate = false; // random truncation of each micro-batch (causal models; see above)
  Precision precision = Precision::fp32;  // Linear GEMM operands (Context::gemm_precision)
  AdamWConfig optim;
  LrSchedule schedule;
  std::uint64_t seed = 0;       // parameter init, sampler, RNG keys
  // Data
  std::string data_path;
  double val_fraction = 0.05;
  data::SampleOrder order = data::SampleOrder::random_windows;
  // Logs, evaluation, samples
  std::int64_t log_interval = 10;
  std::string log_dir;  // "" = no metrics.jsonl
  std::int64_t eval_interval = 0, eval_batches = 4;
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
  bool resume = false;
  std::string init_from;  // fresh runs: load parameters + buffers by reference name from this model.safetensors /
                          // step folder / checkpoint dir before step 1 (load_model_weights); ignored on resume
  // Where
  Device device = Device::cpu;
  nlohmann::json config_snapshot;  // saved in trainer.json
};

struct TrainResult {
  std::int64_t start_step = 0;      // step the run started from (0, or the checkpoint's)
  std::int64_t end_step = 0;        // steps done at the end
  std::vector<double> losses;       // training loss of each step run here (averaged over ranks)
  std::vector<double> grad_norms;   // before clipping
  std::vector<double> val_losses;   // each evaluation, in order
  std::vector<std::string> samples; // generated texts (rank 0)
  std::int64_t tokens_seen = 0;
  std::string last_checkpoint;      // folder of the last checkpoint written ("" if none)
};

// The loss of one training micro-batch x i64 [b, T+1] through `ar` (its ignore_index
// must not be a token id, and its pad_value is `pad_value`): ar.loss(x) without truncation; with
// `truncate`, the wrapper's random_truncate with the wrapper's own key (ar.truncate_key(c)),
// the padding masked as inputs and replaced
// by ignore_index as targets. The backward is ar.loss_backward(st, c, scale) either way.
Tensor micro_batch_loss(AutoregressiveWrapper& ar, std::int64_t pad_value, const Tensor& x,
                        bool truncate, ARLossStash& st, const Context& c);

// Runs the training. `dp` is the data-parallel communicator (nullptr or size 1: one process); it
// must move tensors of spec.device. Throws sk::Error / data::DataError for bad input before
// writing anything.
TrainResult run_training(const TrainSpec& spec, par::Communicator* dp = nullptr);

}  // namespace sk
