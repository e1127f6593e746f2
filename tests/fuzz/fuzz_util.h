// fuzz_util.h — shared by the libFuzzer targets (each includes it once, in its only source): the
// CPU backend registered before the first input (LLVMFuzzerInitialize), the input written to a
// per-process file for readers that take a path.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/backends.h"

namespace sk::fuzz {


// The input as a file (same path each call, overwritten); `ext` for readers that look at it.
inline std::string as_file(const std::uint8_t* data, std::size_t size, const char* ext) {
  static const std::string dir = [] {
    const char* t = std::getenv("TMPDIR");
    return std::string(t && *t ? t : "/tmp");
  }();
  const std::string path = dir + "/sk_fuzz_" + std::to_string(::getpid()) + ext;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace sk::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("OMP_NUM_THREADS", "1", 0);
  sk::init_backends(/*quiet=*/true);
  return 0;
}
