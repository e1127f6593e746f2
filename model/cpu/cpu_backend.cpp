// cpu_backend.cpp — memory, registration, and the small creation/copy ops (fill, cast, rand_uniform,
// axpy, where, masked_fill).
#include "model/cpu/cpu_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "model/backends.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

// ---- memory ------------------------------------------------------------------------------------
// Host tensors come from a caching pool: a freed block goes back to a free list of its size class
// and the next request of that class reuses it, so the step loop (which allocates the same shapes
// every step) stops paying malloc/free and the page faults of fresh memory.
// Size classes: multiples of 64 bytes up to 4 KiB, then 8 classes per power of two (<= 12.5 %
// rounding waste). Blocks of kMapMin bytes or more are mapped straight from the kernel (whole
// pages), so they never fragment the malloc heap and a trimmed block really leaves the resident
// set. The pool keeps at most kPoolCap bytes of free blocks: a miss that would exceed it first
// returns cached blocks (largest first). Within a training run the same shapes recur every step,
// so the cap only matters when shapes keep changing.
namespace {

constexpr std::size_t kMapMin = std::size_t{256} << 10;
constexpr std::size_t kPoolCap = std::size_t{128} << 20;

std::size_t size_class(std::size_t n) {
  if (n <= 4096) return n == 0 ? 64 : (n + 63) / 64 * 64;
  const std::size_t p = std::size_t{1} << (63 - __builtin_clzll(n));  // highest power of two <= n
  const std::size_t step = p / 8;  // >= 512; a multiple of the page size from kMapMin up
  return (n + step - 1) / step * step;
}

void* system_alloc(std::size_t cls) {
  if (cls < kMapMin) return std::aligned_alloc(64, cls);
  void* p = mmap(nullptr, cls, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void system_free(void* p, std::size_t cls) {
  if (cls < kMapMin) std::free(p);
  else munmap(p, cls);
}

class HostPool {
 public:
  void* get(std::size_t cls) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
        return p;
      }
      if (cached_ + cls > kPoolCap) trim_locked(cls < kPoolCap ? kPoolCap - cls : 0);
    }
    void* p = system_alloc(cls);
    if (!p) {  // out of memory: give every cached block back and try once more
      {
        std::lock_guard<std::mutex> lock(mu_);
        trim_locked(0);
      }
      p = system_alloc(cls);
    }
    return p;
  }
  void put(void* p, std::size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    free_[cls].push_back(p);
    cached_ += cls;
  }

 private:
  void trim_locked(std::size_t keep) {
    for (auto it = free_.rbegin(); it != free_.rend() && cached_ > keep; ++it) {
      auto& v = it->second;
      while (!v.empty() && cached_ > keep) {
        system_free(v.back(), it->first);
        v.pop_back();
        cached_ -= it->first;
      }
    }
  }
  std::mutex mu_;
  std::map<std::size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::size_t cached_ = 0;                          // bytes in free_
};

// Never destroyed: tensors held by other static objects may be freed during exit.
HostPool& host_pool() {
  static HostPool* pool = new HostPool;
  return *pool;
}

}  // namespace

std::size_t CpuBackend::memory_capacity() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  std::size_t cap = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  // A cgroup v2 limit of this process (containers, Slurm's task cgroups): "max" or a byte count.
  std::ifstream cg("/sys/fs/cgroup/memory.max");
  std::string v;
  if (cg >> v && !v.empty() && v != "max" && v.find_first_not_of("0123456789") == std::string::npos) {
    const std::size_t lim = std::stoull(v);
    if (lim > 0 && (cap == 0 || lim < cap)) cap = lim;
  }
  return cap;
}

void* CpuBackend::allocate(std::size_t bytes) {
  void* p = host_pool().get(size_class(bytes));
  SK_CHECK(p != nullptr, "cpu allocate: out of host memory allocating ", bytes, " bytes (", in_use_.load(),
           " bytes in use)");
  std::size_t now = in_use_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  std::size_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return p;
}

void CpuBackend::deallocate(void* p, std::size_t bytes) {
  if (!p) return;
  host_pool().put(p, size_class(bytes));
  in_use_.fetch_sub(bytes, std::memory_order_relaxed);
}

void CpuBackend::copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t n) {
  SK_ASSERT(dst_dev == Device::cpu && src_dev == Device::cpu, "cpu copy_bytes asked to copy ",
            device_name(src_dev), " -> ", device_name(dst_dev));
  if (n) std::memmove(dst, src, n);
}

// ---- fill / cast / rand ------------------------------------------------------------------------
namespace {
template <class T>
void fill_as(void* p, std::int64_t n, T v) {
  T* q = static_cast<T*>(p);
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) q[i] = v;
}

template <class T>
void to_f32(float* y, const void* x, std::int64_t n) {
  const T* s = static_cast<const T*>(x);
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(s[i]);
}
}  // namespace

void CpuBackend::do_fill(Tensor& x, float value) {
  std::int64_t n = x.numel();
  switch (x.dtype()) {
    case DType::f32: fill_as<float>(x.raw(), n, value); break;
    case DType::bf16: fill_as<std::uint16_t>(x.raw(), n, f32_to_bf16(value)); break;
    case DType::i32: fill_as<std::int32_t>(x.raw(), n, static_cast<std::int32_t>(value)); break;
    case DType::i64: fill_as<std::int64_t>(x.raw(), n, static_cast<std::int64_t>(value)); break;
    case DType::u8: fill_as<std::uint8_t>(x.raw(), n, static_cast<std::uint8_t>(value)); break;
  }
}

void CpuBackend::do_cast(Tensor& y, const Tensor& x) {
  std::int64_t n = x.numel();
  if (x.dtype() == y.dtype()) {
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    return;
  }
  if (y.dtype() == DType::f32) {
    float* out = f32(y);
    switch (x.dtype()) {
      case DType::bf16: {
        const auto* s = static_cast<const std::uint16_t*>(x.raw());
#pragma omp parallel for if (n > kParallelMin) schedule(static)
        for (std::int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i]);
        return;
      }
      case DType::i32: to_f32<std::int32_t>(out, x.raw(), n); return;
      case DType::i64: to_f32<std::int64_t>(out, x.raw(), n); return;
      case DType::u8: to_f32<std::uint8_t>(out, x.raw(), n); return;
      case DType::f32: break;
    }
  } else if (x.dtype() == DType::f32 && y.dtype() == DType::bf16) {
    const float* s = f32(x);
    auto* out = static_cast<std::uint16_t*>(y.raw());
#pragma omp parallel for if (n > kParallelMin) schedule(static)
    for (std::int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(s[i]);
    return;
  } else if (x.dtype() == DType::f32 && y.dtype() == DType::i64) {
    const float* s = f32(x);
    auto* out = static_cast<std::int64_t*>(y.raw());
#pragma omp parallel for if (n > kParallelMin) schedule(static)
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<std::int64_t>(s[i]);
    return;
  }
  SK_ASSERT(false, "cast: conversion ", dtype_name(x.dtype()), " -> ", dtype_name(y.dtype()), " passed the checks");
}

void CpuBackend::do_rand_uniform(Tensor& y, RngKey key) {
  float* out = f32(y);
  const std::int64_t n = y.numel();
  const auto first = static_cast<std::int64_t>(philox_first_block(key));
  const auto end = static_cast<std::int64_t>(philox_end_block(key, static_cast<std::uint64_t>(n)));
  const auto off = static_cast<std::int64_t>(key.offset);
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t b = first; b < end; ++b) {
    const Philox4 r = philox_block(key, static_cast<std::uint64_t>(b));
    for (std::int64_t j = 0; j < 4; ++j) {
      const std::int64_t i = 4 * b + j - off;
      if (i >= 0 && i < n) out[i] = philox_uniform(r.v[j]);
    }
  }
}

// ---- simple elementwise ------------------------------------------------------------------------
void CpuBackend::do_axpy(Tensor& y, const Tensor& x, float alpha) {
  float* py = f32(y);
  const float* px = f32(x);
  std::int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) py[i] += alpha * px[i];
}

void CpuBackend::do_where(Tensor& y, const Tensor& mask, const Tensor& a, const Tensor& b) {
  float* py = f32(y);
  const float* pa = f32(a);
  const float* pb = f32(b);
  const std::uint8_t* m = u8(mask);
  std::int64_t n = y.numel();
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) py[i] = m[i] ? pa[i] : pb[i];
}

void CpuBackend::do_masked_fill(Tensor& y, const Tensor& x, const Tensor& mask, float value) {
  float* py = f32(y);
  const float* px = f32(x);
  const std::uint8_t* m = u8(mask);
  std::int64_t n = y.numel();
#pragma omp parallel for if (n > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) py[i] = m[i] ? px[i] : value;
}

// ---- registration ------------------------------------------------------------------------------
void register_cpu_backend() {
  static CpuBackend instance;
  threads_init();
  register_backend(Device::cpu, &instance);
}

}  // namespace sk
