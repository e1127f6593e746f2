// bench.h — the benchmark workload (shared/bench/README.md): full training steps of the LM on
// uniform random tokens, timed.
//
// One step: tokens [B, T+1] drawn fresh (uniform in [0, V), host RNG keyed by (seed, step)),
// logits = LM(tokens[:, :-1]) in training mode, loss = mean cross-entropy against tokens[:, 1:],
// backward, AdamW step, zero grads. `warmup_steps` untimed steps come first, then
// `measure_steps` timed ones; tokens/s = B*T / median step time. This is what
// bench_reference.py times on the PyTorch reference.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/core/dtype.h"
#include "model/layers/layer.h"
#include "model/lm/config.h"
#include "trainer/optimizer.h"

namespace sk {

struct BenchSpec {
  std::string workload;  // a name for the report (the config file's stem)
  LMConfig model;
  std::int64_t batch_size = 0;
  std::int64_t seq_len = 0;
  AdamWConfig optim;
  std::int64_t warmup_steps = 3;
  std::int64_t measure_steps = 10;
  std::uint64_t seed = 0;  // parameter init; tokens use seed + 1
  Precision precision = Precision::fp32;  // Linear GEMM operands (Context::gemm_precision)
  Device device = Device::cpu;
};

struct BenchResult {
  std::string workload;
  std::string device;
  std::int64_t batch_size = 0, seq_len = 0, params = 0;
  std::int64_t warmup_steps = 0, steps = 0;  // steps = timed steps
  double tokens_per_s = 0;
  double step_s_median = 0;
  std::vector<double> step_s_all;  // timed steps, in order
  // Medians of the step's phases (timed steps): forward, loss + backward, optimizer + zero_grad.
  double forward_s_median = 0, backward_s_median = 0, optimizer_s_median = 0;
  double loss_first = 0, loss_last = 0;  // first warm-up step, last timed step
  std::int64_t peak_rss_bytes = 0;       // getrusage ru_maxrss of this process
  std::int64_t peak_device_bytes = -1;   // CUDA backend's peak allocation; -1 on CPU
};

// Runs the workload. `progress` (optional) is called after every step with (step index,
// seconds, loss, timed?).
BenchResult run_bench(const BenchSpec& spec,
                      const std::function<void(std::int64_t, double, double, bool)>& progress = {});

// One-line JSON object of the result (the bench command prints it last).
std::string bench_result_json(const BenchResult& r);

double median(std::vector<double> v);

}  // namespace sk
