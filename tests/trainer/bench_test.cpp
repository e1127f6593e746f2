// The benchmark workload on a tiny model: report fields, determinism, and the JSON line.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/core/backend.h"
#include "trainer/bench.h"

namespace sk {
namespace {

BenchSpec tiny(Device d) {
  BenchSpec s;
  s.workload = "tiny";
  s.model.num_tokens = 64;
  s.model.dim = 32;
  s.model.max_seq_len = 64;
  s.model.depth = 2;
  s.model.heads = 2;
  s.model.bucket_size = 16;
  s.model.causal = true;
  s.model.reversible = true;
  s.model.n_local_attn_heads = 1;
  s.batch_size = 2;
  s.seq_len = 64;
  s.optim.lr = 1e-3;
  s.warmup_steps = 1;
  s.measure_steps = 3;
  s.seed = 5;
  s.device = d;
  return s;
}

class BenchTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (GetParam() == Device::cuda && !has_backend(Device::cuda)) GTEST_SKIP() << "no CUDA backend/GPU";
  }
};

TEST_P(BenchTest, ReportsEveryField) {
  int calls = 0, timed = 0;
  BenchResult r = run_bench(tiny(GetParam()), [&](std::int64_t step, double s, double loss, bool is_timed) {
    EXPECT_EQ(step, calls);
    EXPECT_GT(s, 0);
    EXPECT_TRUE(std::isfinite(loss));
    ++calls;
    timed += is_timed;
  });
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(timed, 3);
  EXPECT_EQ(r.workload, "tiny");
  EXPECT_EQ(r.device, device_name(GetParam()));
  EXPECT_EQ(r.steps, 3);
  ASSERT_EQ(r.step_s_all.size(), 3u);
  EXPECT_DOUBLE_EQ(r.step_s_median, median(r.step_s_all));
  EXPECT_NEAR(r.tokens_per_s, 2.0 * 64 / r.step_s_median, 1e-9 * r.tokens_per_s);
  EXPECT_GT(r.params, 0);
  EXPECT_GT(r.peak_rss_bytes, 0);
  // Random tokens: the first loss is near log(V) for a freshly initialised model.
  EXPECT_NEAR(r.loss_first, std::log(64.0), 1.0);
  EXPECT_TRUE(std::isfinite(r.loss_last));
  if (GetParam() == Device::cuda) EXPECT_GT(r.peak_device_bytes, 0);
  else EXPECT_EQ(r.peak_device_bytes, -1);

  auto j = nlohmann::json::parse(bench_result_json(r));
  for (const char* k : {"workload", "device", "steps", "tokens_per_s", "step_s_median", "step_s_all", "loss_first",
                        "loss_last", "peak_rss_bytes", "peak_device_bytes", "params"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["step_s_all"].size(), 3u);
  EXPECT_EQ(bench_result_json(r).find('\n'), std::string::npos);
}

TEST_P(BenchTest, SameSeedSameLosses) {
  BenchSpec s = tiny(GetParam());
  s.measure_steps = 1;
  BenchResult a = run_bench(s), b = run_bench(s);
  EXPECT_EQ(a.loss_first, b.loss_first);
  EXPECT_EQ(a.loss_last, b.loss_last);
  s.seed = 6;
  BenchResult c = run_bench(s);
  EXPECT_NE(a.loss_first, c.loss_first);
}

TEST_P(BenchTest, RejectsBadSpecs) {
  BenchSpec s = tiny(GetParam());
  s.measure_steps = 0;
  EXPECT_THROW(run_bench(s), Error);
  s = tiny(GetParam());
  s.model.return_embeddings = true;
  EXPECT_THROW(run_bench(s), Error);
}

INSTANTIATE_TEST_SUITE_P(Trainer, BenchTest, ::testing::Values(Device::cpu, Device::cuda),
                         [](const auto& info) { return std::string(device_name(info.param)); });

TEST(Median, OddEven) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_THROW(median({}), Error);
}

}  // namespace
}  // namespace sk
