// Process-grid arithmetic (no processes): coordinates, groups, neighbours, stage ranges.
#include <gtest/gtest.h>

#include <set>

#include "model/core/error.h"
#include "parallel/grid.h"

namespace sk::par {
namespace {

TEST(Grid, WorkedExampleEightRanks) {
  Grid g(8, 2, 4);
  EXPECT_EQ(g.stages(), 2);
  EXPECT_EQ(g.replicas(), 4);
  EXPECT_EQ(g.dp_group(0), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(g.dp_group(1), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(g.pp_group(2), (std::vector<int>{2, 6}));
  EXPECT_EQ(g.coord_of(6), (GridCoord{1, 2}));
  EXPECT_EQ(g.next_stage_rank(2), 6);
  EXPECT_EQ(g.prev_stage_rank(6), 2);
  EXPECT_EQ(g.next_stage_rank(6), -1);
  EXPECT_EQ(g.prev_stage_rank(1), -1);
  EXPECT_TRUE(g.is_first_stage(3));
  EXPECT_TRUE(g.is_last_stage(4));
  EXPECT_EQ(g.describe(6), "rank 6 (stage 1/2, replica 2/4)");
}

TEST(Grid, CoordinatesRoundTripAndGroupsPartition) {
  for (int P : {1, 2, 3, 4, 6}) {
    for (int D : {1, 2, 5}) {
      Grid g(P * D, P, D);
      std::set<int> seen_dp, seen_pp;
      for (int s = 0; s < P; ++s)
        for (int r : g.dp_group(s)) {
          EXPECT_TRUE(seen_dp.insert(r).second);
          EXPECT_EQ(g.coord_of(r).stage, s);
          EXPECT_EQ(g.dp_color(r), s);
        }
      for (int d = 0; d < D; ++d) {
        auto grp = g.pp_group(d);
        ASSERT_EQ(static_cast<int>(grp.size()), P);
        for (int i = 0; i < P; ++i) {
          EXPECT_TRUE(seen_pp.insert(grp[static_cast<std::size_t>(i)]).second);
          EXPECT_EQ(g.coord_of(grp[static_cast<std::size_t>(i)]), (GridCoord{i, d}));
          EXPECT_EQ(g.pp_color(grp[static_cast<std::size_t>(i)]), d);
          if (i + 1 < P) {
            EXPECT_EQ(g.next_stage_rank(grp[static_cast<std::size_t>(i)]), grp[static_cast<std::size_t>(i + 1)]);
          }
        }
      }
      EXPECT_EQ(static_cast<int>(seen_dp.size()), P * D);
      EXPECT_EQ(static_cast<int>(seen_pp.size()), P * D);
      for (int r = 0; r < P * D; ++r) EXPECT_EQ(g.rank_of(g.coord_of(r)), r);
    }
  }
}

TEST(Grid, ForWorldDividesAndRejects) {
  Grid g = Grid::for_world(12, 3);
  EXPECT_EQ(g.replicas(), 4);
  EXPECT_THROW(Grid::for_world(10, 3), Error);
  EXPECT_THROW(Grid::for_world(4, 0), Error);
}

TEST(Grid, MismatchMessageNamesSizes) {
  try {
    Grid g(8, 3, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("pipeline_stages (3)"), std::string::npos) << m;
    EXPECT_NE(m.find("data_parallel (2)"), std::string::npos) << m;
    EXPECT_NE(m.find("8 processes"), std::string::npos) << m;
  }
  EXPECT_THROW(Grid(4, 2, 2).coord_of(4), Error);
  EXPECT_THROW(Grid(4, 2, 2).coord_of(-1), Error);
  EXPECT_THROW(Grid(4, 2, 2).rank_of({2, 0}), Error);
}

TEST(StageLayers, BalancedContiguousRanges) {
  EXPECT_EQ(stage_layers(10, 4, 0), std::make_pair(0, 3));
  EXPECT_EQ(stage_layers(10, 4, 1), std::make_pair(3, 6));
  EXPECT_EQ(stage_layers(10, 4, 2), std::make_pair(6, 8));
  EXPECT_EQ(stage_layers(10, 4, 3), std::make_pair(8, 10));
  for (int depth = 1; depth <= 13; ++depth)
    for (int P = 1; P <= depth; ++P) {
      int next = 0;
      for (int s = 0; s < P; ++s) {
        auto [a, b] = stage_layers(depth, P, s);
        EXPECT_EQ(a, next);
        EXPECT_GE(b - a, depth / P);
        EXPECT_LE(b - a, depth / P + 1);
        next = b;
      }
      EXPECT_EQ(next, depth);
    }
  EXPECT_THROW(stage_layers(2, 3, 0), Error);
  EXPECT_THROW(stage_layers(4, 2, 2), Error);
}

}  // namespace
}  // namespace sk::par
