// philox.h — Philox4x32-10 counter-based RNG (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11). Compiles as host and device code: no std containers, no exceptions.
//
// Every random number in sinkhorn is a pure function of (key, counter): dropout masks, layer drop,
// gumbel noise. The key is a 64-bit seed; the counter is (element index / 4, 64-bit stream id).
// Stream ids are derived from (step, sample, layer, site) by the caller (rng_stream()), so the same
// draw is reproduced on CPU and CUDA, on any rank, and when a reversible block recomputes.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define SK_HD __host__ __device__ __forceinline__
#else
#define SK_HD inline
#endif

namespace sk {

struct Philox4 {
  std::uint32_t v[4];
};

SK_HD std::uint32_t philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t* hi) {
  std::uint64_t p = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
  *hi = static_cast<std::uint32_t>(p >> 32);
  return static_cast<std::uint32_t>(p);
}

// Philox4x32 with 10 rounds. ctr: 4 words, key: 2 words.
SK_HD Philox4 philox4x32_10(Philox4 ctr, std::uint32_t k0, std::uint32_t k1) {
  const std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    std::uint32_t hi0, hi1;
    std::uint32_t lo0 = philox_mulhilo(M0, ctr.v[0], &hi0);
    std::uint32_t lo1 = philox_mulhilo(M1, ctr.v[2], &hi1);
    Philox4 n;
    n.v[0] = hi1 ^ ctr.v[1] ^ k0;
    n.v[1] = lo1;
    n.v[2] = hi0 ^ ctr.v[3] ^ k1;
    n.v[3] = lo0;
    ctr = n;
    k0 += W0;
    k1 += W1;
  }
  return ctr;
}

// Key of one random stream: seed (the run's seed) and stream id (what is being drawn), plus where a
// draw sits in the stream.
//   offset      element e of a draw is element offset + e of the stream.
//   row0, rows  (rows > 0) a per-row draw: the drawn tensor is batch-major over `rows` consecutive
//               global rows (samples) starting at global row `row0`, so its element e is element
//               row0 * (n / rows) + e of the stream (n = the tensor's element count). Any split of
//               a global batch into micro-batches or ranks then draws the same bits for every row.
//               philox_resolve() turns such a key into a plain offset once n is known (the
//               Backend's public ops do this before their kernels run).
struct RngKey {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  std::uint64_t offset = 0;
  std::uint64_t row0 = 0;
  std::uint64_t rows = 0;
};

// The key of a draw over n elements with its row placement folded into `offset` (rows = 0 after).
// n must be a multiple of rows (the callers check it).
SK_HD RngKey philox_resolve(RngKey k, std::uint64_t n) {
  if (k.rows > 0) {
    k.offset += k.row0 * (n / k.rows);
    k.row0 = 0;
    k.rows = 0;
  }
  return k;
}

// The 4 words for element block `block` (stream elements 4*block .. 4*block+3; the key's offset is
// not applied here: `block` counts from the start of the stream).
SK_HD Philox4 philox_block(RngKey key, std::uint64_t block) {
  Philox4 c;
  c.v[0] = static_cast<std::uint32_t>(block);
  c.v[1] = static_cast<std::uint32_t>(block >> 32);
  c.v[2] = static_cast<std::uint32_t>(key.stream);
  c.v[3] = static_cast<std::uint32_t>(key.stream >> 32);
  return philox4x32_10(c, static_cast<std::uint32_t>(key.seed), static_cast<std::uint32_t>(key.seed >> 32));
}

// Uniform float in [0, 1) from 24 high bits of a word.
SK_HD float philox_uniform(std::uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }

// Uniform [0,1) for element i of a draw: stream element key.offset + i (row placement must have
// been resolved, see philox_resolve).
SK_HD float philox_uniform_at(RngKey key, std::uint64_t i) {
  const std::uint64_t e = key.offset + i;
  Philox4 r = philox_block(key, e >> 2);
  return philox_uniform(r.v[e & 3]);
}

// Stream blocks covering draw elements [0, n) of a resolved key: blocks b in [first, last), block b
// holds draw elements 4*b - offset + j (j < 4) where that lies in [0, n).
SK_HD std::uint64_t philox_first_block(RngKey key) { return key.offset >> 2; }
SK_HD std::uint64_t philox_end_block(RngKey key, std::uint64_t n) { return n == 0 ? key.offset >> 2 : ((key.offset + n - 1) >> 2) + 1; }

// Mix a 64-bit value (splitmix64 finaliser); used to derive stream ids.
SK_HD std::uint64_t rng_mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Stream id of one draw site: (step, micro-batch / sample, layer or block, site within it).
SK_HD std::uint64_t rng_stream(std::uint64_t step, std::uint64_t sample, std::uint64_t layer, std::uint64_t site) {
  return rng_mix(rng_mix(rng_mix(rng_mix(step) ^ sample) ^ layer) ^ site);
}

}  // namespace sk
