// hash.h — counter-based 64-bit hashing for data/ (sample offsets, shuffles, synthetic tokens).
// Every draw is a pure function of (seed, stream, index), so a batch can be recomputed from its
// step number alone: the sampler's resumability rests on this. SplitMix64 finaliser (Steele,
// Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014).
#pragma once
#include <cstdint>

namespace sk::data {

inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline std::uint64_t hash3(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return mix64(mix64(mix64(seed) ^ stream) ^ index);
}

// Maps a uniform 64-bit value to [0, n) (multiply-shift; bias below n / 2^64).
inline std::uint64_t bounded(std::uint64_t u, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(u) * n) >> 64);
}

}  // namespace sk::data
