// allocator.h — caching allocator for device memory (host-only, g++).
//
// Why: cudaMalloc/cudaFree are slow and synchronise the device. A training step allocates the same
// sizes every step, so blocks are kept on free lists keyed by their rounded size and handed out
// again: after the first step no cudaMalloc happens (stats().cuda_mallocs stops growing).
//
// Rules
// * Sizes are rounded up to a size class: multiples of 512 B up to 4 KiB, then 8 classes per power
//   of two (waste <= 12.5%). A request is served from the free list of exactly its class; there is
//   no block splitting, so fragmentation cannot build up inside a block.
// * Stream semantics: a block freed here may be handed out again at once. That is safe because
//   every op of the CUDA backend runs on one stream, so the next user's kernels queue after the
//   previous user's. Work on another stream touching a freed tensor must be synchronised first.
// * Out of memory: when cudaMalloc fails, every cached block is released (after a device
//   synchronise) and the cudaMalloc retried once; if that fails too, sk::CudaError is thrown with
//   the request size and the allocator's statistics.
// * Thread-safe (one mutex). One allocator per device; it must be used with that device current.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace sk::cu {

class CachingAllocator {
 public:
  struct Stats {
    std::size_t bytes_in_use = 0;  // rounded sizes of the blocks handed out and not yet returned
    std::size_t peak_bytes = 0;    // high-water mark of bytes_in_use
    std::size_t reserved = 0;      // bytes held from cudaMalloc: in use + cached
    std::size_t cached = 0;        // bytes on the free lists
    std::uint64_t cuda_mallocs = 0, cuda_frees = 0;
    std::uint64_t allocations = 0, cache_hits = 0;
    std::uint64_t oom_retries = 0;  // times the cache was released to retry a failed cudaMalloc
  };

  explicit CachingAllocator(int device);
  ~CachingAllocator();  // returns cached blocks to the driver; blocks still in use are leaked
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes);  // bytes == 0 is served as the smallest class
  void deallocate(void* p);           // p from allocate(); nullptr is ignored
  void release_cached();              // cudaFree every cached block (after a device synchronise)
  void reset_peak();                  // peak_bytes = bytes_in_use
  Stats stats() const;
  int device() const { return device_; }

  static std::size_t round_size(std::size_t bytes);

 private:
  void release_cached_locked();

  int device_;
  mutable std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, std::size_t> live_;               // block -> size class
  Stats st_;
};

}  // namespace sk::cu
