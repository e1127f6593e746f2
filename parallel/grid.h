// grid.h — the process grid: pure arithmetic, no MPI (tested without processes).
//
// world = pipeline_stages (P) x data_parallel (D). Data-parallel replicas vary fastest, so the
// ranks holding one pipeline stage are adjacent (their gradient all-reduce then stays on a node
// when D divides the node's GPU count):
//
//     rank = stage * D + replica
//
// Worked example, 8 ranks, P = 2, D = 4:
//     stage 0: ranks 0 1 2 3        dp_group(0) = {0,1,2,3}   (all-reduce gradients of stage 0)
//     stage 1: ranks 4 5 6 7        dp_group(1) = {4,5,6,7}
//     pp_group(r) = {r, 4 + r}      (replica r's pipeline: rank r sends activations to rank 4 + r)
//     coord_of(6) = {stage 1, replica 2};  next_stage_rank(2) = 6;  prev_stage_rank(6) = 2
//
// stage_layers splits a depth over the stages in contiguous ranges, the first (depth % P) stages
// taking one block more: depth 10, P 4 -> [0,3) [3,6) [6,8) [8,10).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace sk::par {

struct GridCoord {
  int stage = 0;    // pipeline stage, 0 .. P-1
  int replica = 0;  // data-parallel index, 0 .. D-1
  bool operator==(const GridCoord&) const = default;
};

class Grid {
 public:
  // Throws sk::Error unless pipeline_stages >= 1, data_parallel >= 1 and their product is world_size.
  Grid(int world_size, int pipeline_stages, int data_parallel);
  // D = world_size / pipeline_stages (throws if it does not divide).
  static Grid for_world(int world_size, int pipeline_stages);

  int world_size() const { return world_; }
  int stages() const { return stages_; }
  int replicas() const { return replicas_; }

  int rank_of(GridCoord c) const;
  GridCoord coord_of(int rank) const;

  std::vector<int> dp_group(int stage) const;    // ranks of one stage, replica order
  std::vector<int> pp_group(int replica) const;  // ranks of one replica's pipeline, stage order
  // Colors for MPI_Comm_split: ranks with equal color share the group; key = position in it.
  int dp_color(int rank) const { return coord_of(rank).stage; }
  int pp_color(int rank) const { return coord_of(rank).replica; }

  bool is_first_stage(int rank) const { return coord_of(rank).stage == 0; }
  bool is_last_stage(int rank) const { return coord_of(rank).stage == stages_ - 1; }
  int next_stage_rank(int rank) const;  // -1 on the last stage
  int prev_stage_rank(int rank) const;  // -1 on the first stage

  // "rank 6 (stage 1/2, replica 2/4)" for log and error lines.
  std::string describe(int rank) const;

 private:
  void check_rank(int rank) const;
  int world_, stages_, replicas_;
};

// Contiguous block range [first, last) of `stage` when `depth` blocks are split over `stages`.
// Throws sk::Error unless 1 <= stages <= depth.
std::pair<int, int> stage_layers(int depth, int stages, int stage);

}  // namespace sk::par
