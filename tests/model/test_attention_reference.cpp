// test_attention_reference.cpp — SinkhornSelfAttention against the PyTorch reference layer
// (tests/data/attention/*.safetensors, written by tests/model/gen_attention/gen.py in float64 with
// defects D1 and D2 corrected). Output: relative L2 error < 1e-4; every gradient (x, parameters,
// context): < 1e-3 (an exactly zero expected gradient: absolute norm <= 1e-6), as compare.py.
// Runs on every available backend.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/layers/attention.h"
#include "trainer/checkpoint/safetensors.h"

namespace sk {
namespace {

const char* kCases[] = {
    "nc_attn_mask",        "nc_sortcut_mask",        "nc_kvbucket_dimhead_mask", "nc_local_mask",
    "nc_nomask_dimhead",   "nc_simple_top1_mask",    "causal_attn_top1_local_mask",
    "causal_attn_top2_mask", "causal_simple_mask",   "causal_hs1_nomask",       "causal_local_only_mask",
    "context_mask",        "context_sortcut_mask",
};

std::string case_path(const std::string& name) {
  return std::string(SK_TEST_DATA) + "/attention/" + name + ".safetensors";
}

struct Err {
  double err;
  bool zero_ref;
};
// Relative Frobenius error in float64 (absolute norm when the reference is exactly zero).
Err compare(const Tensor& actual, const Tensor& expected) {
  auto a = actual.to_vector<float>(), e = expected.to_vector<float>();
  EXPECT_EQ(a.size(), e.size());
  double num = 0, den = 0, an = 0;
  for (std::size_t i = 0; i < a.size() && i < e.size(); ++i) {
    double d = double(a[i]) - double(e[i]);
    num += d * d;
    den += double(e[i]) * double(e[i]);
    an += double(a[i]) * double(a[i]);
    EXPECT_TRUE(std::isfinite(a[i])) << "non-finite value at " << i;
  }
  if (den == 0) return {std::sqrt(an), true};
  return {std::sqrt(num / den), false};
}

AttentionConfig config_from_json(const nlohmann::json& j) {
  AttentionConfig c;
  auto i64 = [&](const char* k, std::int64_t dflt) { return j.at(k).is_null() ? dflt : j.at(k).get<std::int64_t>(); };
  c.dim = j.at("dim").get<std::int64_t>();
  c.heads = j.at("heads").get<std::int64_t>();
  c.dim_head = i64("dim_head", 0);
  c.bucket_size = j.at("bucket_size").get<std::int64_t>();
  c.kv_bucket_size = i64("kv_bucket_size", 0);
  c.max_seq_len = i64("max_seq_len", j.at("T").get<std::int64_t>());
  c.causal = j.at("causal").get<bool>();
  c.non_permutative = true;
  c.sinkhorn_iter = 5;
  c.n_sortcut = j.at("n_sortcut").get<std::int64_t>();
  c.temperature = j.at("temperature").get<float>();
  c.n_local_attn_heads = j.at("n_local_attn_heads").get<std::int64_t>();
  c.use_simple_sort_net = j.at("use_simple_sort_net").get<bool>();
  c.n_top_buckets = j.at("n_top_buckets").get<std::int64_t>();
  c.is_context = j.at("is_context").get<bool>();
  return c;
}

class AttentionReference : public ::testing::TestWithParam<const char*> {};

TEST_P(AttentionReference, MatchesPyTorch) {
  const std::string name = GetParam();
  const std::string path = case_path(name);
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run tests/model/gen_attention/gen.py";
  Metadata meta;
  TensorMap file = read_safetensors(path, &meta);
  AttentionConfig cfg = config_from_json(nlohmann::json::parse(meta.at("config")));

  for (Device dev : available_devices()) {
    SCOPED_TRACE(std::string("device ") + std::string(device_name(dev)));
    ParamSet ps;
    SinkhornSelfAttention layer(cfg, ps, "", 3);
    ps.finalize(dev, 0);
    LoadOptions opt;
    opt.allow_unexpected = true;  // the file also holds inputs, outputs and gradients
    load_params(ps, file, opt);

    Context c;
    c.be = &backend_for(dev);
    c.training = false;
    if (file.count("input_mask")) c.input_mask = file.at("input_mask").to(dev);
    Tensor dcontext;
    if (cfg.is_context) {
      c.context = file.at("context").to(dev);
      if (file.count("context_mask")) c.context_mask = file.at("context_mask").to(dev);
      c.dcontext = &dcontext;
    }
    Stash s;
    Tensor y = layer.forward(file.at("x").to(dev), s, c);
    Tensor dx = layer.backward(file.at("dy").to(dev), s, c);

    Err e = compare(y, file.at("out"));
    EXPECT_LT(e.err, 1e-4) << name << ": out";
    double worst = e.err;
    e = compare(dx, file.at("grad.x"));
    EXPECT_LT(e.err, 1e-3) << name << ": grad.x";
    worst = std::max(worst, e.err);
    std::size_t checked = 0;
    for (const auto& p : ps.params()) {
      const std::string g = "grad." + p->name();
      ASSERT_TRUE(file.count(g)) << name << ": reference has no " << g;
      e = compare(p->grad, file.at(g));
      if (e.zero_ref) EXPECT_LE(e.err, 1e-6) << name << ": " << g << " (reference exactly zero)";
      else EXPECT_LT(e.err, 1e-3) << name << ": " << g;
      worst = std::max(worst, e.err);
      ++checked;
    }
    EXPECT_GE(checked, 3u);
    if (cfg.is_context) {
      ASSERT_TRUE(dcontext.defined()) << name << ": no context gradient";
      e = compare(dcontext, file.at("grad.context"));
      EXPECT_LT(e.err, 1e-3) << name << ": grad.context";
      worst = std::max(worst, e.err);
    }
    std::printf("[ attention ] %-30s %-4s worst relative error %.2e\n", name.c_str(),
                std::string(device_name(dev)).c_str(), worst);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, AttentionReference, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

// Every file of tests/data/attention is listed above (a new case cannot be forgotten).
TEST(AttentionReferenceData, EveryFileIsTested) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(SK_TEST_DATA) + "/attention")) {
    if (e.path().extension() != ".safetensors") continue;
    ++n;
    bool listed = false;
    for (const char* c : kCases) listed = listed || e.path().stem() == c;
    EXPECT_TRUE(listed) << e.path() << " is not in kCases";
  }
  EXPECT_EQ(n, std::size(kCases));
}

}  // namespace
}  // namespace sk
