// cpu_common.h — small helpers shared by the CPU backend's translation units (not a public header).
#pragma once
#include <cstdint>

#include "model/core/tensor.h"

namespace sk::cpu {

// Below this many elements a loop runs on one thread (thread start-up costs more than it saves).
constexpr std::int64_t kParallelMin = 32768;

inline float* f32(Tensor& t) { return static_cast<float*>(t.raw()); }
inline const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
inline const std::int64_t* i64(const Tensor& t) { return static_cast<const std::int64_t*>(t.raw()); }
inline const std::uint8_t* u8(const Tensor& t) { return static_cast<const std::uint8_t*>(t.raw()); }

// Called once when the backend registers: OpenBLAS runs single-threaded inside our OpenMP team
// (gemm.cpp says why).
void threads_init();

// Rows/cols view of a tensor for ops over its last axis.
inline std::int64_t last_dim(const Tensor& t) { return t.ndim() ? t.dim(-1) : 1; }

}  // namespace sk::cpu
