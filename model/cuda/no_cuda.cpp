// no_cuda.cpp — linked when the build has no CUDA toolkit (SK_CUDA=OFF): there is no CUDA
// backend, and asking for Device::cuda fails with "built without CUDA" (backend.cpp).
#include "model/backends.h"

namespace sk {
bool register_cuda_backend(bool) { return false; }
bool cuda_compiled() { return false; }
}  // namespace sk
