// bench.cpp — the benchmark workload (see bench.h).
#include "trainer/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "data/batch.h"
#include "model/core/backend.h"
#include "model/layers/layer.h"
#include "model/lm/sinkhorn_lm.h"

namespace sk {
namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::int64_t peak_rss_bytes() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return static_cast<std::int64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

// One column range of a row-major [B, T+1] host batch as an i64 tensor [B, T] on `d`.
Tensor token_tensor(const std::vector<std::int64_t>& v, std::int64_t B, std::int64_t T, Device d) {
  return Tensor::from_vector(v, {B, T}, d);
}

}  // namespace

double median(std::vector<double> v) {
  SK_CHECK(!v.empty(), "median of no values");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

BenchResult run_bench(const BenchSpec& spec, const std::function<void(std::int64_t, double, double, bool)>& progress) {
  SK_CHECK(spec.batch_size >= 1, "bench: batch_size must be >= 1, got ", spec.batch_size);
  SK_CHECK(spec.seq_len >= 1, "bench: seq_len must be >= 1, got ", spec.seq_len);
  SK_CHECK(spec.warmup_steps >= 0, "bench: warmup steps must be >= 0, got ", spec.warmup_steps);
  SK_CHECK(spec.measure_steps >= 1, "bench: measured steps must be >= 1, got ", spec.measure_steps);
  SK_CHECK(!spec.model.return_embeddings, "bench: the workload trains on logits; return_embeddings must be false");
  SK_CHECK(has_backend(spec.device), "bench: no ", device_name(spec.device), " backend in this process",
           spec.device == Device::cuda ? " (built without CUDA, or no GPU visible)" : "");

  Backend& be = backend_for(spec.device);
  ParamSet ps;
  SinkhornLM lm(spec.model, ps);
  ps.finalize(spec.device, spec.seed);
  AdamW opt(ps, spec.optim);

  const std::int64_t B = spec.batch_size, T = spec.seq_len, V = spec.model.num_tokens;
  const std::int64_t total = spec.warmup_steps + spec.measure_steps;
  const bool sync = spec.device != Device::cpu;

  BenchResult r;
  r.workload = spec.workload;
  r.device = std::string(device_name(spec.device));
  r.batch_size = B;
  r.seq_len = T;
  r.params = ps.numel();
  r.warmup_steps = spec.warmup_steps;
  r.steps = spec.measure_steps;
  std::vector<double> fwd, bwd, upd;

  for (std::int64_t step = 0; step < total; ++step) {
    data::TokenBatch batch = data::uniform_token_batch(spec.seed + 1, static_cast<std::uint64_t>(step), B, T + 1, V);
    Tensor inputs = token_tensor(batch.inputs(), B, T, spec.device);
    Tensor targets = token_tensor(batch.targets(), B, T, spec.device).reshape({B * T});
    if (sync) be.synchronize();

    Context ctx;
    ctx.be = &be;
    ctx.training = true;
    ctx.seed = spec.seed;
    ctx.step = static_cast<std::uint64_t>(step);
    ctx.micro = 0;
    ctx.gemm_precision = spec.precision;
    LMStash stash;

    const auto t0 = Clock::now();
    Tensor logits = lm.forward(inputs, stash, ctx).reshape({B * T, V});  // [B*T, V]
    if (sync) be.synchronize();
    const auto t1 = Clock::now();
    CrossEntropyOut ce = be.cross_entropy(logits, targets, /*ignore_index=*/-100);
    Tensor dlogits = be.cross_entropy_backward(1.f, logits, targets, ce, -100).reshape({B, T, V});
    logits = Tensor();  // not needed in backward; dropping it (and moving dlogits in) lowers the peak
    lm.backward(std::move(dlogits), stash, ctx);
    if (sync) be.synchronize();
    const auto t2 = Clock::now();
    opt.step();
    ps.zero_grad();
    if (sync) be.synchronize();
    const auto t3 = Clock::now();

    const double loss = ce.loss.item();
    SK_CHECK(std::isfinite(loss), "bench: loss is ", loss, " at step ", step, " (diverged)");
    const bool timed = step >= spec.warmup_steps;
    if (step == 0) r.loss_first = loss;
    r.loss_last = loss;
    if (timed) {
      r.step_s_all.push_back(seconds(t0, t3));
      fwd.push_back(seconds(t0, t1));
      bwd.push_back(seconds(t1, t2));
      upd.push_back(seconds(t2, t3));
    }
    if (progress) progress(step, seconds(t0, t3), loss, timed);
  }

  r.step_s_median = median(r.step_s_all);
  r.tokens_per_s = static_cast<double>(B * T) / r.step_s_median;
  r.forward_s_median = median(fwd);
  r.backward_s_median = median(bwd);
  r.optimizer_s_median = median(upd);
  r.peak_rss_bytes = peak_rss_bytes();
  if (spec.device == Device::cuda) r.peak_device_bytes = static_cast<std::int64_t>(be.peak_bytes());
  return r;
}

std::string bench_result_json(const BenchResult& r) {
  nlohmann::ordered_json j;
  j["workload"] = r.workload;
  j["device"] = r.device;
  j["batch_size"] = r.batch_size;
  j["seq_len"] = r.seq_len;
  j["params"] = r.params;
  j["warmup_steps"] = r.warmup_steps;
  j["steps"] = r.steps;
  j["tokens_per_s"] = r.tokens_per_s;
  j["step_s_median"] = r.step_s_median;
  j["step_s_all"] = r.step_s_all;
  j["forward_s_median"] = r.forward_s_median;
  j["backward_s_median"] = r.backward_s_median;
  j["optimizer_s_median"] = r.optimizer_s_median;
  j["loss_first"] = r.loss_first;
  j["loss_last"] = r.loss_last;
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  if (r.peak_device_bytes >= 0) j["peak_device_bytes"] = r.peak_device_bytes;
  else j["peak_device_bytes"] = nullptr;
  const char* omp = std::getenv("OMP_NUM_THREADS");
  j["omp_num_threads"] = omp ? nlohmann::json(omp) : nlohmann::json(nullptr);
  return j.dump();
}

}  // namespace sk
