// libFuzzer target: the TOML config loader — a run config (load_run_config, with and without a
// --set override) and a reference-case config (load_reference_case_config). Rejections must be
// sk::ConfigError (exit 2: a one-line message naming the file); anything else is a finding.
#include <cstdint>
#include <cstdlib>

#include "fuzz_util.h"
#include "launch/config.h"
#include "model/core/error.h"

namespace {

template <class F>
void expect_config_error_or_ok(F&& f) {
  try {
    f();
  } catch (const sk::Error& e) {
    if (e.exit_code() != sk::kExitUsage) std::abort();  // a config problem must be reported as one
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = sk::fuzz::as_file(data, size, ".toml");
  expect_config_error_or_ok([&] { sk::load_run_config(path); });
  expect_config_error_or_ok([&] { sk::load_run_config(path, {"train.lr=1e-3", "parallel.allow_shared_gpu=true"}); });
  expect_config_error_or_ok([&] { sk::load_reference_case_config(path); });
  return 0;
}
