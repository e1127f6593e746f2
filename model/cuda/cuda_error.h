// cuda_error.h — the exception thrown by CUDA_CHECK / CUBLAS_CHECK and by the caching allocator
// on out-of-memory. Host-only (g++): it derives from sk::Error so launch/main.cpp's one catch
// handles it; `code` keeps the library's status for callers that want to tell OOM from the rest.
#pragma once
#include <string>

#include "model/core/error.h"

namespace sk {

class CudaError : public Error {
 public:
  enum class Library { runtime, cublas, allocator };
  CudaError(const std::string& msg, Library lib, int code) : Error(msg), library_(lib), code_(code) {}
  Library library() const { return library_; }
  int code() const { return code_; }  // cudaError_t / cublasStatus_t value
  bool out_of_memory() const;         // cudaErrorMemoryAllocation, CUBLAS_STATUS_ALLOC_FAILED, allocator OOM

 private:
  Library library_;
  int code_;
};

}  // namespace sk
