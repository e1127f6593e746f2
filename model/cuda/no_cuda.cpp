// no_cuda.cpp — linked when the build has no CUDA toolkit (SK_CUDA=OFF): there is no CUDA
// backend, and asking for Device::cuda fails with "built without CUDA" (backend.cpp).
#include "model/backends.h"
#include "model/core/error.h"

namespace sk {
bool register_cuda_backend(bool) { return false; }
bool cuda_compiled() { return false; }
std::vector<std::string> cuda_device_uuids() { return {}; }
void select_cuda_device(int ordinal) {
  throw Error(cat("cannot select CUDA device ", ordinal, ": this binary was built without CUDA"));
}
}  // namespace sk
