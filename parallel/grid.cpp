// grid.cpp — process-grid arithmetic (see grid.h for the layout and a worked example).
#include "parallel/grid.h"

#include "model/core/error.h"

namespace sk::par {

Grid::Grid(int world_size, int pipeline_stages, int data_parallel)
    : world_(world_size), stages_(pipeline_stages), replicas_(data_parallel) {
  SK_CHECK(world_size >= 1, "process grid: world size must be >= 1, got ", world_size);
  SK_CHECK(pipeline_stages >= 1, "process grid: pipeline_stages must be >= 1, got ", pipeline_stages);
  SK_CHECK(data_parallel >= 1, "process grid: data_parallel must be >= 1, got ", data_parallel);
  SK_CHECK(static_cast<long long>(pipeline_stages) * data_parallel == world_size, "process grid: pipeline_stages (",
           pipeline_stages, ") x data_parallel (", data_parallel, ") = ",
           static_cast<long long>(pipeline_stages) * data_parallel, " but the world has ", world_size,
           " processes (mpirun -np must equal their product)");
}

Grid Grid::for_world(int world_size, int pipeline_stages) {
  SK_CHECK(pipeline_stages >= 1, "process grid: pipeline_stages must be >= 1, got ", pipeline_stages);
  SK_CHECK(world_size >= 1 && world_size % pipeline_stages == 0, "process grid: pipeline_stages = ", pipeline_stages,
           " does not divide the world size ", world_size);
  return Grid(world_size, pipeline_stages, world_size / pipeline_stages);
}

void Grid::check_rank(int rank) const {
  SK_CHECK(rank >= 0 && rank < world_, "process grid: rank ", rank, " is outside the world [0, ", world_, ")");
}

int Grid::rank_of(GridCoord c) const {
  SK_CHECK(c.stage >= 0 && c.stage < stages_, "process grid: stage ", c.stage, " is outside [0, ", stages_, ")");
  SK_CHECK(c.replica >= 0 && c.replica < replicas_, "process grid: replica ", c.replica, " is outside [0, ", replicas_,
           ")");
  return c.stage * replicas_ + c.replica;
}

GridCoord Grid::coord_of(int rank) const {
  check_rank(rank);
  return GridCoord{rank / replicas_, rank % replicas_};
}

std::vector<int> Grid::dp_group(int stage) const {
  std::vector<int> g;
  for (int r = 0; r < replicas_; ++r) g.push_back(rank_of({stage, r}));
  return g;
}

std::vector<int> Grid::pp_group(int replica) const {
  std::vector<int> g;
  for (int s = 0; s < stages_; ++s) g.push_back(rank_of({s, replica}));
  return g;
}

int Grid::next_stage_rank(int rank) const {
  GridCoord c = coord_of(rank);
  return c.stage + 1 < stages_ ? rank_of({c.stage + 1, c.replica}) : -1;
}

int Grid::prev_stage_rank(int rank) const {
  GridCoord c = coord_of(rank);
  return c.stage > 0 ? rank_of({c.stage - 1, c.replica}) : -1;
}

std::string Grid::describe(int rank) const {
  GridCoord c = coord_of(rank);
  return cat("rank ", rank, " (stage ", c.stage, "/", stages_, ", replica ", c.replica, "/", replicas_, ")");
}

std::pair<int, int> stage_layers(int depth, int stages, int stage) {
  SK_CHECK(stages >= 1 && stages <= depth, "pipeline: ", stages, " stages cannot split a depth of ", depth,
           " (need 1 <= pipeline_stages <= depth)");
  SK_CHECK(stage >= 0 && stage < stages, "pipeline: stage ", stage, " is outside [0, ", stages, ")");
  int base = depth / stages, extra = depth % stages;
  int first = stage * base + (stage < extra ? stage : extra);
  int count = base + (stage < extra ? 1 : 0);
  return {first, first + count};
}

}  // namespace sk::par
