// cuda_check.cpp — message formatting for CUDA_CHECK / CUBLAS_CHECK (cuda_check.h).
#include "model/cuda/cuda_check.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstring>
#include <string>

#include "model/cuda/cublas_api.h"
#include "model/cuda/cuda_error.h"

namespace sk {

bool CudaError::out_of_memory() const {
  switch (library_) {
    case Library::runtime: return code_ == static_cast<int>(cudaErrorMemoryAllocation);
    case Library::cublas: return code_ == static_cast<int>(CUBLAS_STATUS_ALLOC_FAILED);
    case Library::allocator: return true;
  }
  return false;
}

namespace cu {
namespace {

// "/abs/path/to/repo/model/cuda/x.cpp" -> "model/cuda/x.cpp" (shorter, and the same on every machine).
const char* short_path(const char* file) {
  const char* p = std::strstr(file, "model/cuda/");
  return p ? p : file;
}

std::string where(const char* call, const char* file, int line) {
  return cat(call, " failed at ", short_path(file), ":", line);
}

}  // namespace

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  // Clear the runtime's last-error slot (non-sticky errors) so the next launch check does not
  // report this failure a second time.
  (void)cudaGetLastError();
  throw CudaError(cat("CUDA error: ", where(call, file, line), ": ", cudaGetErrorString(err), " (",
                      cudaGetErrorName(err), ")"),
                  CudaError::Library::runtime, static_cast<int>(err));
}

void throw_cublas_error(int status, const char* call, const char* file, int line) {
  const auto s = static_cast<cublasStatus_t>(status);
  // The status text comes from the loaded library (cublas_api.h); a status can only exist once
  // the library has been loaded, but fall back to the number rather than load it here.
  const std::string text = cublas::loaded() ? cat(cublas::api().status_string(s), " (", cublas::api().status_name(s), ")")
                                            : cat("status ", status);
  throw CudaError(cat("cuBLAS error: ", where(call, file, line), ": ", text),
                  CudaError::Library::cublas, status);
}

}  // namespace cu
}  // namespace sk
