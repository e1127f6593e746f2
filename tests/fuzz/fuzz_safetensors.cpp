// libFuzzer target: the safetensors reader (parse_safetensors: header rules, offsets, sizes) and
// loading what it returns into a small ParamSet with a tied parameter and a buffer (load_params).
// Rejections are sk::Error; anything else (a crash, a sanitizer report, another exception, a leak)
// is a finding.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "model/core/error.h"
#include "trainer/checkpoint/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sk;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  TensorMap tensors;
  Metadata meta;
  try {
    tensors = parse_safetensors(bytes, "fuzz.safetensors", &meta);
  } catch (const Error&) {
    return 0;
  }
  ParamSet ps;
  Parameter* w = ps.add("w", {2, 3}, Init::Zeros());
  ps.alias(w, "w_tied");
  ps.add("b", {3}, Init::Zeros());
  ps.add_buffer("n", Tensor::zeros({}, DType::i64));
  ps.finalize(Device::cpu, 1);
  for (bool strict : {true, false}) {
    try {
      load_params(ps, tensors, LoadOptions{strict, !strict});
    } catch (const Error&) {
    }
  }
  return 0;
}
