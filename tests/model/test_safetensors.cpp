// safetensors: round trip of every dtype, the header layout, atomic writes, loading a ParamSet by
// name (aliases of tied tensors accepted) and the errors that name the offending tensor.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <fstream>

#include "model/core/dtype.h"
#include "model/lm/sinkhorn_lm.h"
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

// A safetensors file in memory: 8-byte length, the header as given (space-padded), then `data`.
std::string st_bytes(std::string header, const std::string& data) {
  while ((8 + header.size()) % 8) header.push_back(' ');
  std::string out(8, '\0');
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string st_error(const std::string& header, const std::string& data) {
  try {
    parse_safetensors(st_bytes(header, data), "mem.safetensors");
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("mem.safetensors"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  }
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "missing '" << (part) << "' in: " << (msg)

// The header rules of the format (and of its reference reader): no overlapping or uncovered bytes,
// no repeated keys, a string-to-string __metadata__, sizes that cannot overflow.
TEST(Safetensors, HeaderRules) {
  const std::string d16(16, '\1');
  TensorMap ok = parse_safetensors(
      st_bytes(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[8,16]}})",
               d16),
      "mem.safetensors");
  EXPECT_EQ(ok.size(), 3u);
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                      std::string(12, '\0')),
             "tensors 'a' and 'b' overlap");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                      std::string(8, '\0')),
             "overlap");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d16), "bytes [0, 8) of the data region");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d16), "bytes [8, 16) of the data region");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d16),
             "key 'a' appears twice");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
             "key 'dtype' appears twice");
  EXPECT_HAS(st_error(R"({"__metadata__":[1],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
             "__metadata__ must be an object");
  EXPECT_HAS(st_error(R"({"__metadata__":{"k":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
             "__metadata__ 'k' must be a string");
  // 2^32 x 2^32 elements, and 2^61 x 8 I64 (2^64 * 8 bytes) wrap around 64 bits.
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
             "'a': shape [4294967296,4294967296] has more elements than 64-bit sizes can count");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"I64","shape":[2305843009213693952,8],"data_offsets":[0,0]}})", ""),
             "more elements than 64-bit");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""), "bad shape");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')),
             "unsupported dtype C64");
  EXPECT_HAS(st_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
             "8 bytes for F32[3] (expected 12)");
  EXPECT_HAS(st_error("[1,2]", ""), "header must be a JSON object");
  EXPECT_HAS(st_error("{\"a\":", ""), "not valid JSON");
}

// The same rules on the file reader (read_safetensors), which reads tensors from the stream.
TEST(Safetensors, FileReaderAppliesTheHeaderRules) {
  const std::string p = tmp_path("overlap.safetensors");
  std::ofstream(p, std::ios::binary) << st_bytes(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(12, '\0'));
  try {
    read_safetensors(p);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), p);
    EXPECT_HAS(std::string(e.what()), "overlap");
  }
}

// A tied parameter found under several names must hold one tensor (item: an untied checkpoint
// loaded silently into a weight_tie model, layer 1's weights dropped).
TEST(Safetensors, TiedAliasesMustHoldEqualValues) {
  ParamSet ps;
  Parameter* a = ps.add("m.a", {2, 2}, Init::Zeros());
  ps.alias(a, "m.a_tied");
  ps.finalize(Device::cpu, 1);
  TensorMap same;
  same["m.a"] = Tensor::full({2, 2}, 3.f);
  same["m.a_tied"] = Tensor::full({2, 2}, 3.f);
  EXPECT_NO_THROW(load_params(ps, same));
  // BF16 under one name, the same values as F32 under the other: equal after widening.
  TensorMap mixed = same;
  mixed["m.a_tied"] = Tensor::from_vector(std::vector<std::uint16_t>(4, f32_to_bf16(3.f)), {2, 2});
  EXPECT_NO_THROW(load_params(ps, mixed));
  TensorMap differ = same;
  std::vector<float> v(4, 3.f);
  v[3] = 3.5f;
  differ["m.a_tied"] = Tensor::from_vector(v, {2, 2});
  try {
    load_params(ps, differ);
    ADD_FAILURE() << "accepted different values under tied names";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_HAS(m, "'m.a' and 'm.a_tied'");
    EXPECT_HAS(m, "element 3");
    EXPECT_HAS(m, "different values");
  }
  TensorMap shape = same;
  shape["m.a_tied"] = Tensor::full({4}, 3.f);
  try {
    load_params(ps, shape);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "'m.a' [2, 2] and 'm.a_tied' [4]");
  }
  // A value that differs only in its bits (-0 vs +0) is a different tensor too.
  TensorMap zero = same;
  zero["m.a"] = Tensor::full({2, 2}, 0.f);
  zero["m.a_tied"] = Tensor::full({2, 2}, -0.f);
  EXPECT_THROW(load_params(ps, zero), Error);
}

// End to end: the weights of an untied 2-layer LM do not load into the same LM with weight_tie
// (its layers are one module under two names); the tied LM's own file does.
TEST(Safetensors, UntiedCheckpointIsRefusedByATiedModel) {
  LMConfig c = test::tiny_lm(true);
  ParamSet untied_ps;
  SinkhornLM untied(c, untied_ps);
  untied_ps.finalize(Device::cpu, 3);
  const std::string p = tmp_path("untied.safetensors");
  save_params_file(p, untied_ps);
  c.weight_tie = true;
  ParamSet tied_ps;
  SinkhornLM tied(c, tied_ps);
  tied_ps.finalize(Device::cpu, 4);
  try {
    load_params_file(tied_ps, p);
    ADD_FAILURE() << "an untied checkpoint loaded into a weight_tie model";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_HAS(m, "layers.0.");
    EXPECT_HAS(m, "layers.1.");
    EXPECT_HAS(m, "one tied parameter");
  }
  const std::string q = tmp_path("tied.safetensors");
  save_params_file(q, tied_ps);
  EXPECT_NO_THROW(load_params_file(tied_ps, q));
}

}  // namespace
}  // namespace sk
