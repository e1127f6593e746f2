// model.safetensors metadata ([model] round trip, the differing key named) and foreign weights:
// torch.save zip / pickle files (made by Python's zipfile and pickle), F16/F64 tensors (made by
// numpy, converted values checked bit for bit against numpy's float32 casts), the
// AutoregressiveWrapper's "net.net." prefix.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "model/core/error.h"
#include "model/core/param.h"
#include "model/lm/sinkhorn_lm.h"
#include "tests/model/model_test_util.h"
#include "tests/tools/test_util.h"
#include "trainer/checkpoint/model_metadata.h"
#include "trainer/checkpoint/safetensors.h"

namespace sk {
namespace {

using sk::test::run_python;
using sk::test::TempDir;

// The small causal LM of the model tests.
LMConfig tiny() {
  LMConfig m = sk::test::tiny_lm(true);
  m.num_tokens = 256;
  return m;
}

std::string error_of(const std::function<void()>& f) { return sk::test::error_of<Error>(f); }

TEST(ModelMetadata, RoundTripsEveryKeyResolved) {
  LMConfig m = tiny();
  m.temperature = 0.123456789012345;
  m.pkm_layers = {1, 3};
  m.ff_dropout = 0.1;
  m.n_top_buckets = 3;
  m.n_local_attn_heads = 1;
  const Metadata meta = model_metadata(m);
  EXPECT_EQ(meta.at("sinkhorn.format"), "1");
  EXPECT_EQ(meta.at("model.dim_head"), "8");         // None -> dim / heads
  EXPECT_EQ(meta.at("model.kv_bucket_size"), "8");   // None -> bucket_size
  EXPECT_EQ(meta.at("model.emb_dim"), "16");         // None -> dim
  EXPECT_EQ(meta.at("model.pkm_layers"), "[1, 3]");
  EXPECT_EQ(meta.at("model.causal"), "true");
  EXPECT_EQ(meta.size(), 34u);  // the format + all 33 [model] keys (launch/config_toml.cpp read_lm)
  const LMConfig back = model_from_metadata(meta, "f");
  EXPECT_EQ(model_metadata(back), meta);
  EXPECT_EQ(back.temperature, m.temperature);
  EXPECT_EQ(back.pkm_layers, m.pkm_layers);
  // None and its resolved value are the same model.
  LMConfig explicit_dh = m;
  explicit_dh.dim_head = 8;
  EXPECT_NO_THROW(check_model_metadata(meta, explicit_dh, "f"));
  EXPECT_NO_THROW(check_model_metadata(Metadata{}, tiny(), "f"));  // no metadata: nothing to check
}

TEST(ModelMetadata, NamesTheDifferingKey) {
  LMConfig m = tiny();
  const Metadata meta = model_metadata(m);
  LMConfig other = m;
  other.n_top_buckets = 3;
  EXPECT_EQ(error_of([&] { check_model_metadata(meta, other, "w.safetensors"); }),
            "w.safetensors: [model] n_top_buckets = 3 in the config, 1 in the weights' metadata (the weights were "
            "trained with n_top_buckets = 1)");
  Metadata bad = meta;
  bad["model.depth"] = "two";
  EXPECT_NE(error_of([&] { model_from_metadata(bad, "w"); }).find("w: __metadata__ model.depth = \"two\" is malformed"),
            std::string::npos);
  bad = meta;
  bad.erase("model.heads");
  EXPECT_NE(error_of([&] { model_from_metadata(bad, "w"); }).find("has no model.heads"), std::string::npos);
  EXPECT_NE(error_of([&] { model_from_metadata(Metadata{}, "w"); }).find("no [model] in its __metadata__"),
            std::string::npos);
}

TEST(ModelMetadata, SavedWeightsLoadOnlyIntoTheirModel) {
  TempDir d;
  ParamSet ps;
  SinkhornLM lm(tiny(), ps);
  ps.finalize(Device::cpu, 3);
  save_params_file(d / "model.safetensors", ps, true, model_metadata(tiny()));
  Metadata meta;
  read_safetensors(d / "model.safetensors", &meta);
  EXPECT_EQ(model_from_metadata(meta, "x").n_top_buckets, 1);
  ParamSet ps2;
  SinkhornLM lm2(tiny(), ps2);
  ps2.finalize(Device::cpu, 4);
  std::vector<std::string> notes;
  EXPECT_EQ(load_model_weights(d / "model.safetensors", ps2, tiny(), &notes), d / "model.safetensors");
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(ps2.flat_values().to_vector<float>(), ps.flat_values().to_vector<float>());
  LMConfig other = tiny();
  other.n_top_buckets = 2;  // same shapes: would load silently without the metadata check
  EXPECT_NE(error_of([&] { load_model_weights(d / "model.safetensors", ps2, other); }).find("n_top_buckets = 2 in the config"),
            std::string::npos);
}

TEST(ForeignWeights, TorchSaveFilesAreNotSafetensors) {
  TempDir d;
  run_python(R"(
import pickle, zipfile
pickle.dump({'weight': [1.0, 2.0]}, open('legacy.pt', 'wb'), protocol=2)
with zipfile.ZipFile('model.pt', 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'weight': [1.0]}))
open('junk.bin', 'wb').write(b'\xff' * 64)
)",
             d.path);
  std::string e = error_of([&] { read_safetensors(d / "model.pt"); });
  EXPECT_NE(e.find(d / "model.pt" + " is not a safetensors file: it is a zip archive (torch.save's format"), std::string::npos) << e;
  EXPECT_NE(e.find("safetensors.torch.save_file"), std::string::npos) << e;
  e = error_of([&] { read_safetensors(d / "legacy.pt"); });
  EXPECT_NE(e.find("is not a safetensors file: it is a Python pickle"), std::string::npos) << e;
  e = error_of([&] { read_safetensors(d / "junk.bin"); });
  EXPECT_NE(e.find("is not a safetensors file: header length"), std::string::npos) << e;
}

TEST(ForeignWeights, F16AndF64AreConvertedToF32) {
  TempDir d;
  // A safetensors file written by hand in Python (the format is 8-byte length + JSON + data).
  const std::string want = run_python(R"(
import json, struct, numpy as np
h = np.array([0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, 1e-7, np.inf, -np.inf, 0.333], dtype=np.float16)
g = np.array([1.0 / 3.0, -1e-40, 3.0e38, 1e300, 0.1, 2.0 ** -149], dtype=np.float64)
data = h.tobytes() + g.tobytes()
hdr = {'h': {'dtype': 'F16', 'shape': [10], 'data_offsets': [0, 20]},
       'g': {'dtype': 'F64', 'shape': [2, 3], 'data_offsets': [20, 68]}}
hs = json.dumps(hdr).encode()
hs += b' ' * ((8 - (8 + len(hs)) % 8) % 8)
open('mixed.safetensors', 'wb').write(struct.pack('<Q', len(hs)) + hs + data)
with np.errstate(over='ignore'):
    print(' '.join(str(v) for v in h.astype(np.float32).view(np.uint32)))
    print(' '.join(str(v) for v in g.astype(np.float32).view(np.uint32)))
)",
             d.path);
  std::vector<std::string> conv;
  TensorMap t = read_safetensors(d / "mixed.safetensors", nullptr, &conv);
  ASSERT_EQ(conv.size(), 2u);
  EXPECT_EQ(conv[0], "tensor 'g': F64 -> F32");
  EXPECT_EQ(conv[1], "tensor 'h': F16 -> F32");
  std::istringstream in(want);
  for (const char* name : {"h", "g"}) {
    const Tensor& x = t.at(name);
    EXPECT_EQ(x.dtype(), DType::f32);
    for (float f : x.to_vector<float>()) {
      std::uint32_t bits = 0, expect = 0;
      std::memcpy(&bits, &f, 4);
      in >> expect;
      EXPECT_EQ(bits, expect) << name << " value " << f;
    }
  }
  EXPECT_EQ(t.at("g").shape(), (Shape{2, 3}));
}

TEST(ForeignWeights, WrapperPrefixIsStrippedAndNamed) {
  TempDir d;
  ParamSet ps;
  SinkhornLM lm(tiny(), ps);
  ps.finalize(Device::cpu, 3);
  TensorMap wrapped, half;
  for (auto& [name, t] : params_by_name(ps)) {
    wrapped["net.net." + name] = t;
    half[half.size() % 2 ? "net.net." + name : name] = t;
  }
  write_safetensors(d / "wrapped.safetensors", wrapped);
  write_safetensors(d / "half.safetensors", half);
  ParamSet ps2;
  SinkhornLM lm2(tiny(), ps2);
  ps2.finalize(Device::cpu, 4);
  std::vector<std::string> notes;
  load_model_weights(d / "wrapped.safetensors", ps2, tiny(), &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("stripped the AutoregressiveWrapper prefix 'net.net.' from"), std::string::npos) << notes[0];
  EXPECT_EQ(ps2.flat_values().to_vector<float>(), ps.flat_values().to_vector<float>());
  const std::string e = error_of([&] { load_model_weights(d / "half.safetensors", ps2, tiny()); });
  EXPECT_NE(e.find("tensor names start with the wrapper prefix 'net.net.'"), std::string::npos) << e;
}

}  // namespace
}  // namespace sk
