// embedding.cpp — row gather from a table [V, E] by i64 ids, and its scatter-add backward
// (repeated ids add up).
#include <cstring>

#include "model/cpu/cpu_backend.h"
#include "model/cpu/cpu_common.h"

namespace sk {

using namespace cpu;

namespace {
void check_ids(const char* op, const std::int64_t* ids, std::int64_t n, std::int64_t V) {
  for (std::int64_t i = 0; i < n; ++i)
    SK_CHECK(ids[i] >= 0 && ids[i] < V, op, ": id ", ids[i], " at position ", i, " is outside the table [0, ", V, ")");
}
}  // namespace

void CpuBackend::do_embedding(Tensor& y, const Tensor& table, const Tensor& ids) {
  const std::int64_t V = table.dim(0), E = table.dim(1), n = ids.numel();
  const std::int64_t* pid = i64(ids);
  check_ids("embedding", pid, n, V);
  const float* pt = f32(table);
  float* py = f32(y);
#pragma omp parallel for if (n * E > kParallelMin) schedule(static)
  for (std::int64_t i = 0; i < n; ++i)
    std::memcpy(py + i * E, pt + pid[i] * E, static_cast<std::size_t>(E) * sizeof(float));
}

void CpuBackend::do_embedding_backward(Tensor& dtable, const Tensor& dy, const Tensor& ids) {
  const std::int64_t V = dtable.dim(0), E = dtable.dim(1), n = ids.numel();
  const std::int64_t* pid = i64(ids);
  check_ids("embedding_backward", pid, n, V);
  const float* pdy = f32(dy);
  float* pd = f32(dtable);
  // Parallel over column blocks: every thread walks all ids but owns its columns, so repeated ids
  // never race and the summation order is fixed (deterministic).
  constexpr std::int64_t kBlock = 256;
  const std::int64_t nblocks = (E + kBlock - 1) / kBlock;
#pragma omp parallel for if (n * E > kParallelMin && nblocks > 1) schedule(static)
  for (std::int64_t cb = 0; cb < nblocks; ++cb) {
    const std::int64_t c0 = cb * kBlock, c1 = c0 + kBlock < E ? c0 + kBlock : E;
    for (std::int64_t i = 0; i < n; ++i) {
      float* dst = pd + pid[i] * E;
      const float* src = pdy + i * E;
      for (std::int64_t j = c0; j < c1; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace sk
