// host_values.h — small host values (losses, norms, counters, byte counts) moved exactly over a
// Communicator, which only moves f32 buffers.
//
// A double is sent as three floats (hi = float(x), mid = float(x - hi), lo = float(x - hi - mid)),
// which rebuild it exactly for normal magnitudes. Gathers are exact (nothing is added), so every
// rank can combine the gathered values in a fixed order — the same order a single process would
// use — and all ranks get bit-identical results.
#pragma once
#include <vector>

#include "parallel/communicator.h"

namespace sk::par {

// Every rank's `local` (the same length everywhere), concatenated in rank order. comm == nullptr
// or size 1: `local` itself.
std::vector<double> gather_doubles(Communicator* comm, const std::vector<double>& local, Device dev);

// The element-wise sum over ranks of vectors in which, for every element, at most one rank holds
// a non-zero value: exact (x + 0 = x), e.g. a value that only one pipeline stage computes.
std::vector<double> combine_disjoint(Communicator* comm, const std::vector<double>& local, Device dev);

// The element-wise maximum over ranks.
std::vector<double> max_doubles(Communicator* comm, const std::vector<double>& local, Device dev);

}  // namespace sk::par
