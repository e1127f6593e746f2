// safetensors: round trip of every dtype, the header layout, atomic writes, loading a ParamSet by
// name (aliases of tied tensors accepted) and the errors that name the offending tensor.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <fstream>

#include "model/core/dtype.h"
#include "trainer/checkpoint/safetensors.h"
#include "model_test_util.h"

namespace sk {
namespace {

std::string tmp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("sk_st_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TensorMap m;
  m["a.f32"] = test::randn({2, 3}, 1);
  m["b.i64"] = Tensor::from_vector(std::vector<std::int64_t>{-1, 5, 1LL << 40}, {3});
  m["c.i32"] = Tensor::from_vector(std::vector<std::int32_t>{7, -8}, {2, 1});
  m["d.u8"] = Tensor::from_vector(std::vector<std::uint8_t>{0, 1, 255}, {3});
  m["e.bf16"] = Tensor::from_vector(std::vector<std::uint16_t>{f32_to_bf16(1.5f), f32_to_bf16(-2.f)}, {2});
  m["f.scalar"] = Tensor::from_vector(std::vector<std::int64_t>{42}, {});
  m["g.empty"] = Tensor::zeros({0, 4}, DType::f32);
  const std::string p = tmp_path("rt.safetensors");
  write_safetensors(p, m, {{"format", "pt"}});
  Metadata md;
  TensorMap r = read_safetensors(p, &md);
  EXPECT_EQ(md["format"], "pt");
  ASSERT_EQ(r.size(), m.size());
  for (const auto& [k, t] : m) {
    ASSERT_TRUE(r.count(k)) << k;
    EXPECT_EQ(r[k].dtype(), t.dtype()) << k;
    EXPECT_EQ(r[k].shape(), t.shape()) << k;
    ASSERT_EQ(r[k].nbytes(), t.nbytes());
    if (t.nbytes()) {
      EXPECT_EQ(std::memcmp(r[k].raw(), t.raw(), t.nbytes()), 0) << k;
    }
  }
  // Layout: 8-byte length, header padded so the data starts at a multiple of 8.
  std::ifstream f(p, std::ios::binary);
  std::uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  // No temporary file is left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::path(p).parent_path()))
    files += e.path().filename().string().rfind("rt.safetensors", 0) == 0;
  EXPECT_EQ(files, 1);
}

TEST(Safetensors, ReadsTheReferenceCases) {
  TensorMap w = read_safetensors(std::string(SK_TEST_DATA) + "/reference/v06_noncausal_simple_sortnet_pkm/weights.safetensors");
  ASSERT_TRUE(w.count("to_token_emb.weight"));
  EXPECT_EQ(w["to_token_emb.weight"].shape(), (Shape{64, 32}));
  EXPECT_EQ(w["sinkhorn_transformer.layers.layers.0.1.fn.norm.fn.num_batches_tracked"].dtype(), DType::i64);
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string p = tmp_path("bad.safetensors");
  {
    std::ofstream f(p, std::ios::binary);
    std::uint64_t n = 1000;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << "{}";
  }
  EXPECT_THROW(read_safetensors(p), Error);
  {
    std::ofstream f(p, std::ios::binary);
    std::string h = R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})";
    std::uint64_t n = h.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << h << std::string(8, '\0');
  }
  try {
    read_safetensors(p);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_safetensors(tmp_path("does_not_exist.safetensors")), Error);
}

TEST(Safetensors, LoadsParamSetsByAnyAliasAndNamesMismatches) {
  ParamSet ps;
  Parameter* a = ps.add("m.a", {2, 2}, Init::Zeros());
  ps.alias(a, "m.a_tied");
  ps.add("m.b", {3}, Init::Zeros());
  ps.add_buffer("m.buf", Tensor::zeros({}, DType::i64));
  ps.finalize(Device::cpu, 1);

  TensorMap file;
  file["m.a_tied"] = Tensor::full({2, 2}, 3.f);  // only the alias is present
  file["m.b"] = Tensor::full({3}, 2.f);
  file["m.buf"] = Tensor::from_vector(std::vector<std::int64_t>{7}, {});
  LoadReport rep = load_params(ps, file);
  EXPECT_EQ(rep.loaded.size(), 3u);
  EXPECT_EQ(a->value.to_vector<float>(), std::vector<float>(4, 3.f));
  EXPECT_EQ(ps.find_buffer("m.buf")->value.to_vector<std::int64_t>()[0], 7);

  // Save with aliases: the tied tensor appears under both names.
  const std::string p = tmp_path("params.safetensors");
  save_params_file(p, ps);
  TensorMap back = read_safetensors(p);
  EXPECT_TRUE(back.count("m.a") && back.count("m.a_tied") && back.count("m.buf"));

  auto expect_msg = [&](const TensorMap& f, const std::string& needle, const LoadOptions& o = {}) {
    try {
      load_params(ps, f, o);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  TensorMap bad = file;
  bad["m.b"] = Tensor::full({4}, 1.f);
  expect_msg(bad, "'m.b'");  // shape mismatch names the tensor
  TensorMap missing = file;
  missing.erase("m.b");
  expect_msg(missing, "'m.b'");
  LoadOptions lenient;
  lenient.require_all = false;
  EXPECT_EQ(load_params(ps, missing, lenient).missing, std::vector<std::string>{"m.b"});
  TensorMap extra = file;
  extra["m.zzz"] = Tensor::full({1}, 1.f);
  expect_msg(extra, "'m.zzz'");
  TensorMap wrong_dtype = file;
  wrong_dtype["m.b"] = Tensor::from_vector(std::vector<std::int64_t>{1, 2, 3}, {3});
  expect_msg(wrong_dtype, "'m.b'");
}

}  // namespace
}  // namespace sk
