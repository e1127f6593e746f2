// GPU placement across real MPI ranks (run with -np 2 and -np 4 on one node; parallel/placement.h):
// each rank's fake devices stand for what CUDA would show it. Checked on every rank: the device
// choice, who shares, that sharing is refused on every rank unless allowed, and that every rank
// agrees whether any rank shares (which decides NCCL vs MPI for the whole job).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <string>
#include <vector>

#include "model/core/error.h"
#include "parallel/placement.h"
#include "parallel/world.h"
#include "tests/parallel/fake_devices.h"
#include "tests/parallel/multirank/mpi_test_main.h"

namespace sk::par {
namespace {

World* g_world = nullptr;

std::vector<std::string> node_gpus(int n) {
  std::vector<std::string> u;
  for (int i = 0; i < n; ++i) u.push_back("GPU-node-" + std::to_string(i));
  return u;
}

// What f prints on stderr (fd 2 sent to a temporary file meanwhile).
template <class F>
std::string stderr_of(F&& f) {
  std::fflush(stderr);
  char path[] = "/tmp/sk_placement_XXXXXX";
  const int fd = ::mkstemp(path);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string text(4096, '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  ::close(fd);
  ::unlink(path);
  return text;
}

// Every rank gets the same verdict: 1 when it threw ConfigError, else 0; returns the max over ranks.
int any_rank(int mine) {
  int all = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return all;
}

TEST(PlacementMpi, OneGpuPerRankMeansNoSharing) {
  const int n = g_world->local_size();
  const GpuPlacement p = place_on_gpus(g_world, FakeDevices(node_gpus(n)), false);
  EXPECT_EQ(p.ordinal, g_world->local_rank());
  EXPECT_EQ(p.uuid, "GPU-node-" + std::to_string(g_world->local_rank()));
  EXPECT_TRUE(p.shared_with.empty());
  EXPECT_FALSE(p.any_shared);
}

TEST(PlacementMpi, PerTaskBindingEachRankSeesOneDistinctGpu) {
  // Slurm --gpus-per-task=1: every rank sees one device (ordinal 0), a different GPU each.
  const GpuPlacement p = place_on_gpus(g_world, FakeDevices({"GPU-task-" + std::to_string(g_world->rank())}), false);
  EXPECT_EQ(p.ordinal, 0);
  EXPECT_FALSE(p.any_shared);
}

TEST(PlacementMpi, SharedGpuIsRefusedOnEveryRankUnlessAllowed) {
  // One GPU for the whole node (CUDA_VISIBLE_DEVICES=0 for all ranks).
  int threw = 0;
  std::string msg;
  try {
    place_on_gpus(g_world, FakeDevices({"GPU-only"}), false);
  } catch (const ConfigError& e) {
    threw = 1;
    msg = e.what();
  }
  EXPECT_EQ(threw, 1) << "rank " << g_world->rank() << " did not refuse";
  EXPECT_EQ(any_rank(threw), 1);
  EXPECT_NE(msg.find("allow_shared_gpu = true"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GPU-only"), std::string::npos) << msg;
  // Allowed: every rank knows it shares, with whom, and that the job must use MPI, and says so.
  GpuPlacement p;
  const std::string log = stderr_of([&] { p = place_on_gpus(g_world, FakeDevices({"GPU-only"}), true); });
  EXPECT_NE(log.find("gradients go over MPI"), std::string::npos) << "rank " << g_world->rank() << ": " << log;
  EXPECT_EQ(p.ordinal, 0);
  EXPECT_TRUE(p.any_shared);
  EXPECT_EQ(static_cast<int>(p.shared_with.size()), g_world->local_size() - 1);
}

TEST(PlacementMpi, MoreRanksThanGpusShareRoundRobin) {
  if (g_world->local_size() < 4) GTEST_SKIP() << "needs 4 ranks on the node";
  // 2 GPUs for 4 ranks: local rank r takes GPU r % 2 and shares it with r ^ 2.
  const GpuPlacement p = place_on_gpus(g_world, FakeDevices(node_gpus(2)), true);
  const int r = g_world->local_rank();
  EXPECT_EQ(p.ordinal, r % 2);
  EXPECT_EQ(p.shared_with, (std::vector<int>{r ^ 2}));
  EXPECT_TRUE(p.any_shared);
}

TEST(PlacementMpi, OneRankSharingMakesTheWholeJobUseMpi) {
  if (g_world->size() < 3) GTEST_SKIP() << "needs 3 or more ranks";
  // Ranks 0 and 1 see the same GPU, the others distinct ones: everybody learns any_shared.
  const int r = g_world->rank();
  const std::string u = r <= 1 ? "GPU-shared" : "GPU-own-" + std::to_string(r);
  GpuPlacement p;
  const std::string log = stderr_of([&] { p = place_on_gpus(g_world, FakeDevices({u}), true); });
  EXPECT_NE(log.find(r <= 1 ? "shares GPU 0 (GPU-shared)" : "is its own, but other ranks share"), std::string::npos)
      << "rank " << r << ": " << log;
  EXPECT_TRUE(p.any_shared) << "rank " << r;
  EXPECT_EQ(p.shared_with.empty(), r > 1);
  // Refused: ranks that share name the sharing; the others say another rank shares.
  int threw = 0;
  try {
    place_on_gpus(g_world, FakeDevices({u}), false);
  } catch (const ConfigError&) {
    threw = 1;
  }
  EXPECT_EQ(threw, 1) << "rank " << r << " would continue while others stop";
}

}  // namespace
}  // namespace sk::par

int main(int argc, char** argv) {
  return sk::par::test::mpi_test_main(argc, argv, "placement", [](sk::par::World& w) { sk::par::g_world = &w; });
}
