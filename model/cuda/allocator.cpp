// allocator.cpp — the caching allocator (allocator.h states the rules).
#include "model/cuda/allocator.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "model/cuda/cuda_check.h"
#include "model/cuda/cuda_error.h"

namespace sk::cu {

namespace {
constexpr std::size_t kMinBlock = 512;
constexpr std::size_t kSmallLimit = 4096;  // up to here: multiples of 512 B

double mib(std::size_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }
}  // namespace

std::size_t CachingAllocator::round_size(std::size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  if (bytes <= kSmallLimit) return (bytes + kMinBlock - 1) / kMinBlock * kMinBlock;
  // 8 classes per power of two: step = 2^floor(log2(bytes - 1)) / 8.
  std::size_t base = std::size_t{1} << (63 - __builtin_clzll(static_cast<unsigned long long>(bytes - 1)));
  std::size_t step = std::max(kMinBlock, base / 8);
  return (bytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator(int device) : device_(device) {}

CachingAllocator::~CachingAllocator() {
  // Destructors must not throw, and at process exit the runtime may already be unloading: ignore
  // errors here. (The CUDA backend itself is never destroyed; this serves tests and tools.)
  std::lock_guard<std::mutex> lock(mu_);
  if (st_.cached == 0) return;
  if (cudaDeviceSynchronize() != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) (void)cudaFree(p);
  (void)cudaGetLastError();
  free_.clear();
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  st_.allocations++;
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    st_.cached -= size;
    st_.cache_hits++;
  } else {
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not sticky: clear it so later launch checks do not see it
      st_.oom_retries++;
      release_cached_locked();
      e = cudaMalloc(&p, size);
      if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        std::size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
        throw CudaError(cat("CUDA out of memory on device ", device_, ": could not allocate ", mib(size),
                            " MiB (request ", bytes, " bytes); this process holds ", mib(st_.bytes_in_use),
                            " MiB in tensors (peak ", mib(st_.peak_bytes), " MiB); the device has ", mib(free_b),
                            " MiB free of ", mib(total_b),
                            " MiB. Reduce the micro-batch size or sequence length, or enable reversible layers."),
                        CudaError::Library::allocator, static_cast<int>(cudaErrorMemoryAllocation));
      }
    }
    CUDA_CHECK(e);
    st_.cuda_mallocs++;
    st_.reserved += size;
  }
  live_.emplace(p, size);
  st_.bytes_in_use += size;
  st_.peak_bytes = std::max(st_.peak_bytes, st_.bytes_in_use);
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  SK_ASSERT(it != live_.end(), "CUDA allocator: freeing a pointer it did not hand out (", p, ")");
  const std::size_t size = it->second;
  live_.erase(it);
  st_.bytes_in_use -= size;
  free_[size].push_back(p);
  st_.cached += size;
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  if (st_.cached == 0) return;
  // Cached blocks may still be read or written by queued kernels of their last user.
  CUDA_CHECK(cudaDeviceSynchronize());
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      CUDA_CHECK(cudaFree(p));
      st_.cuda_frees++;
      st_.reserved -= size;
    }
    blocks.clear();
  }
  free_.clear();
  st_.cached = 0;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  st_.peak_bytes = st_.bytes_in_use;
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return st_;
}

}  // namespace sk::cu
