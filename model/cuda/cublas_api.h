// cublas_api.h — the cuBLAS entry points the CUDA backend uses, resolved with dlopen when the
// backend starts on a machine with a GPU.
//
// Why not link libcublas: loading libcublas.so (which pulls libcublasLt.so) costs ~210 MB of
// resident memory in every process at start-up — measured 217 MB for an empty `main` linked
// against it vs 1 MB without — GPU or not. A CUDA build running on CPU (CI, a laptop, the CPU
// benchmarks) would then pay it for nothing. Only cudart (~1 MB) is linked; cuBLAS is loaded
// by the first api() call, which happens only once a GPU has been found.
// Host-only header (g++): never include it from .cu files.
#pragma once
#include <cublas_v2.h>

namespace sk::cublas {

struct Api {
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasDestroy_v2) destroy = nullptr;
  decltype(&::cublasSetStream_v2) set_stream = nullptr;
  decltype(&::cublasSetWorkspace_v2) set_workspace = nullptr;
  decltype(&::cublasSetMathMode) set_math_mode = nullptr;
  decltype(&::cublasSgemmStridedBatched) sgemm_strided_batched = nullptr;
  // Spelled out: C++ also sees an inline overload taking a cudaDataType compute type.
  cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                            const void*, const void*, cudaDataType, int, long long int, const void*,
                                            cudaDataType, int, long long int, const void*, void*, cudaDataType, int,
                                            long long int, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&::cublasGetStatusName) status_name = nullptr;
  decltype(&::cublasGetStatusString) status_string = nullptr;
};

// Loads libcublas on the first call (thread-safe) and returns the entry points. Throws sk::Error
// naming the library file(s) tried and dlerror() when it or a symbol cannot be found.
const Api& api();
// Whether api() has already loaded successfully (error formatting uses it without loading).
bool loaded();

}  // namespace sk::cublas
