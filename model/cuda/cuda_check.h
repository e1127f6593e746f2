// cuda_check.h — CUDA_CHECK / CUBLAS_CHECK: wrap a CUDA runtime or cuBLAS call; on failure throw
// sk::CudaError (an sk::Error, cuda_error.h) naming the call, file:line and the library's error
// string. Declarations only: the message is built in cuda_check.cpp, so this header stays light
// enough for the .cu files (it pulls in nothing but the CUDA runtime's C API header).
//
//   CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream));
//   CUBLAS_CHECK(cublasSgemm(...));   // any call returning cublasStatus_t (an int-sized enum)
#pragma once
#include <cuda_runtime_api.h>

namespace sk::cu {

// Throw sk::CudaError for a failed runtime call. `call` is the stringified expression.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
// Same for cuBLAS; the status travels as an int so that cublas_v2.h stays out of this header.
[[noreturn]] void throw_cublas_error(int status, const char* call, const char* file, int line);

}  // namespace sk::cu

#define CUDA_CHECK(call)                                                             \
  do {                                                                               \
    const cudaError_t sk_cuda_err_ = (call);                                         \
    if (sk_cuda_err_ != cudaSuccess)                                                 \
      ::sk::cu::throw_cuda_error(sk_cuda_err_, #call, __FILE__, __LINE__);           \
  } while (0)

#define CUBLAS_CHECK(call)                                                           \
  do {                                                                               \
    const int sk_cublas_status_ = static_cast<int>(call);                            \
    if (sk_cublas_status_ != 0)                                                      \
      ::sk::cu::throw_cublas_error(sk_cublas_status_, #call, __FILE__, __LINE__);    \
  } while (0)

// After a kernel launch: report launch-configuration errors at the launch site.
#define SK_CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
