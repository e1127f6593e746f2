// grid_comms.cpp — see grid_comms.h.
#include "parallel/grid_comms.h"

namespace sk::par {

GridComms make_grid_comms(const World& world, int stages, bool nccl, int cuda_device) {
  GridComms g;
  g.grid = Grid::for_world(world.size(), stages);
  g.coord = g.grid.coord_of(world.rank());
  set_rank_label(g.grid.describe(world.rank()));  // errors and warnings name the grid coordinates
  g.world = make_mpi_communicator(world.comm());
  const MpiComm dp = world.split(g.grid.dp_color(world.rank()), g.coord.replica);
  const MpiComm pp = world.split(g.grid.pp_color(world.rank()), g.coord.stage);
  g.dp = nccl ? make_nccl_communicator(dp, cuda_device) : make_mpi_communicator(dp);
  g.pp = nccl ? make_nccl_communicator(pp, cuda_device) : make_mpi_communicator(pp);
  return g;
}

}  // namespace sk::par
