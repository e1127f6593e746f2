// grid_comms.h — the communicators of one rank of the process grid (grid.h): the whole world,
// this stage's data-parallel group and this replica's pipeline group.
//
//   world  every rank; always host-staged MPI (small host values: agreements, metrics, barriers)
//   dp     the replicas of this rank's stage (gradient averaging); NCCL when `nccl`
//   pp     the stages of this rank's replica (activations, gradients, tied-weight sums); NCCL when `nccl`
// Collective over MPI_COMM_WORLD: every rank must call it with the same `stages`.
#pragma once
#include <memory>

#include "parallel/communicator.h"
#include "parallel/grid.h"
#include "parallel/world.h"

namespace sk::par {

struct GridComms {
  Grid grid{1, 1, 1};
  GridCoord coord;
  std::unique_ptr<Communicator> world, dp, pp;
};

// Throws sk::Error naming the rule when the world size is not a multiple of `stages`.
GridComms make_grid_comms(const World& world, int stages, bool nccl, int cuda_device);

}  // namespace sk::par
