// Sampler: determinism, resumability, data-parallel shares, coverage of shuffled chunks.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data/data_error.h"
#include "data/sampler.h"

namespace sk::data {
namespace {

SamplerConfig cfg(SampleOrder order, std::int64_t T = 16, std::int64_t B = 8, std::uint64_t seed = 5, int r = 0,
                  int R = 1) {
  SamplerConfig c;
  c.seq_len = T;
  c.global_batch = B;
  c.seed = seed;
  c.dp_rank = r;
  c.dp_size = R;
  c.order = order;
  return c;
}

class SamplerOrders : public ::testing::TestWithParam<SampleOrder> {};

TEST_P(SamplerOrders, SameSeedSameBatches) {
  Sampler a(10000, cfg(GetParam())), b(10000, cfg(GetParam()));
  for (int s = 0; s < 5; ++s) EXPECT_EQ(a.next(), b.next());
  Sampler c(10000, cfg(GetParam(), 16, 8, 6));
  EXPECT_NE(Sampler(10000, cfg(GetParam())).next(), c.next());
}

TEST_P(SamplerOrders, OffsetsAreValidWindows) {
  const std::int64_t n = 1000, T = 32;
  Sampler s(n, cfg(GetParam(), T, 16));
  for (int step = 0; step < 50; ++step)
    for (auto off : s.next()) {
      ASSERT_GE(off, 0);
      ASSERT_LE(off + T + 1, n);
    }
}

TEST_P(SamplerOrders, ResumeFromCursorReproduces) {
  Sampler a(5000, cfg(GetParam()));
  for (int i = 0; i < 7; ++i) a.next();
  SamplerCursor cur = a.cursor();
  EXPECT_EQ(cur.step, 7u);
  std::vector<std::vector<std::int64_t>> rest;
  for (int i = 0; i < 5; ++i) rest.push_back(a.next());
  Sampler b(5000, cfg(GetParam()));
  b.restore(cur);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.next(), rest[static_cast<std::size_t>(i)]);
  EXPECT_EQ(a.offsets_at(9), rest[2]);
  Sampler other_seed(5000, cfg(GetParam(), 16, 8, 99));
  EXPECT_THROW(other_seed.restore(cur), DataError);
}

TEST_P(SamplerOrders, DataParallelSharesPartitionTheGlobalBatch) {
  const int R = 4;
  Sampler single(20000, cfg(GetParam(), 16, 8));
  std::vector<Sampler> ranks;
  for (int r = 0; r < R; ++r) ranks.emplace_back(20000, cfg(GetParam(), 16, 8, 5, r, R));
  for (int step = 0; step < 6; ++step) {
    auto whole = single.next();
    std::vector<std::int64_t> joined;
    for (auto& s : ranks) {
      EXPECT_EQ(s.local_batch(), 2);
      auto part = s.next();
      joined.insert(joined.end(), part.begin(), part.end());
    }
    EXPECT_EQ(joined, whole) << "step " << step;
  }
}

TEST_P(SamplerOrders, CursorMovesAcrossLayouts) {
  // Saved by 1 rank, resumed by 2: together the 2 ranks continue the single-rank sequence.
  Sampler one(20000, cfg(GetParam(), 16, 8));
  for (int i = 0; i < 3; ++i) one.next();
  SamplerCursor cur = one.cursor();
  auto expect = one.next();
  Sampler r0(20000, cfg(GetParam(), 16, 8, 5, 0, 2)), r1(20000, cfg(GetParam(), 16, 8, 5, 1, 2));
  r0.restore(cur);
  r1.restore(cur);
  auto a = r0.next(), b = r1.next();
  a.insert(a.end(), b.begin(), b.end());
  EXPECT_EQ(a, expect);
}

INSTANTIATE_TEST_SUITE_P(Data, SamplerOrders,
                         ::testing::Values(SampleOrder::random_windows, SampleOrder::shuffled_chunks),
                         [](const auto& info) { return std::string(sample_order_name(info.param)); });

TEST(Sampler, ShuffledChunksVisitEveryChunkOncePerEpoch) {
  const std::int64_t n = 16 * 40 + 1, T = 16;  // exactly 40 chunks
  Sampler s(n, cfg(SampleOrder::shuffled_chunks, T, 8));
  ASSERT_EQ(s.chunks(), 40);
  std::vector<std::int64_t> epoch0, epoch1;
  for (int step = 0; step < 5; ++step) {
    auto o = s.next();
    epoch0.insert(epoch0.end(), o.begin(), o.end());
  }
  for (int step = 0; step < 5; ++step) {
    auto o = s.next();
    epoch1.insert(epoch1.end(), o.begin(), o.end());
  }
  auto sorted0 = epoch0, sorted1 = epoch1;
  std::sort(sorted0.begin(), sorted0.end());
  std::sort(sorted1.begin(), sorted1.end());
  for (std::int64_t c = 0; c < 40; ++c) {
    EXPECT_EQ(sorted0[static_cast<std::size_t>(c)], c * T);
    EXPECT_EQ(sorted1[static_cast<std::size_t>(c)], c * T);
  }
  EXPECT_NE(epoch0, epoch1);  // each epoch has its own order
}

TEST(Sampler, RandomWindowsCoverStarts) {
  Sampler s(100, cfg(SampleOrder::random_windows, 10, 50));
  std::set<std::int64_t> seen;
  for (int i = 0; i < 40; ++i)
    for (auto o : s.next()) seen.insert(o);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 89);  // last valid start: n - T - 1
  EXPECT_EQ(seen.size(), 90u);
}

TEST(Sampler, RejectsBadSizes) {
  EXPECT_THROW(Sampler(10, cfg(SampleOrder::random_windows, 10)), DataError);  // needs 11 tokens
  EXPECT_NO_THROW(Sampler(11, cfg(SampleOrder::random_windows, 10)));
  EXPECT_THROW(Sampler(1000, cfg(SampleOrder::random_windows, 0)), DataError);
  EXPECT_THROW(Sampler(1000, cfg(SampleOrder::random_windows, 16, 0)), DataError);
  EXPECT_THROW(Sampler(1000, cfg(SampleOrder::random_windows, 16, 6, 5, 0, 4)), DataError);  // 6 % 4
  EXPECT_THROW(Sampler(1000, cfg(SampleOrder::random_windows, 16, 8, 5, 4, 4)), DataError);  // rank 4 of 4
  EXPECT_THROW(parse_sample_order("sequential"), DataError);
  EXPECT_EQ(parse_sample_order("shuffled_chunks"), SampleOrder::shuffled_chunks);
}

}  // namespace
}  // namespace sk::data
