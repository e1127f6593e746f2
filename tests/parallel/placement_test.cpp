// parallel/placement.h without MPI: device choice per local rank, who shares a GPU, the messages,
// and the srun-without-PMI check, with devices faked behind DeviceInfoProvider.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "model/core/error.h"
#include "parallel/placement.h"
#include "tests/parallel/fake_devices.h"

namespace sk::par {
namespace {

TEST(Placement, LocalRankModuloVisibleDevices) {
  EXPECT_EQ(choose_device(0, 8), 0);
  EXPECT_EQ(choose_device(5, 8), 5);
  EXPECT_EQ(choose_device(9, 8), 1);
  EXPECT_EQ(choose_device(3, 1), 0);  // Slurm --gpus-per-task=1: every rank sees its one GPU as 0
  try {
    choose_device(0, 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device is visible"), std::string::npos) << e.what();
  }
}

TEST(Placement, SharingIsDecidedByUuidNotByOrdinal) {
  // 4 ranks, 8 GPUs: nobody shares.
  EXPECT_TRUE(ranks_sharing_with(2, {"GPU-a", "GPU-b", "GPU-c", "GPU-d"}).empty());
  // 4 ranks on 2 GPUs: 0 and 2 share, 1 and 3 share.
  const std::vector<std::string> two = {"GPU-a", "GPU-b", "GPU-a", "GPU-b"};
  EXPECT_EQ(ranks_sharing_with(0, two), (std::vector<int>{2}));
  EXPECT_EQ(ranks_sharing_with(3, two), (std::vector<int>{1}));
  // Per-task binding: each rank's ordinal 0 is a different GPU -> no sharing (NCCL).
  EXPECT_TRUE(ranks_sharing_with(1, {"GPU-x", "GPU-y"}).empty());
  // Two visible ordinals naming one GPU (CUDA_VISIBLE_DEVICES=0,0 or UUID and index): shared.
  EXPECT_EQ(ranks_sharing_with(0, {"GPU-x", "GPU-x", "GPU-x"}), (std::vector<int>{1, 2}));
}

TEST(Placement, MessagesNameRanksHostGpuAndTheWayOut) {
  GpuPlacement p;
  p.ordinal = 1;
  p.uuid = "GPU-1234";
  p.shared_with = {3, 5};
  const std::string refuse = shared_gpu_message(1, p, "node7", false);
  for (const char* part : {"local rank 1", "node7", "GPU 1", "GPU-1234", "local rank(s) 3, 5",
                           "allow_shared_gpu = true", "--gpus-per-task=1"})
    EXPECT_NE(refuse.find(part), std::string::npos) << part << " in: " << refuse;
  const std::string allow = shared_gpu_message(1, p, "node7", true);
  EXPECT_NE(allow.find("gradients go over MPI"), std::string::npos) << allow;
}

TEST(Placement, SingleProcessTakesDeviceZero) {
  const GpuPlacement p = place_on_gpus(nullptr, FakeDevices({"GPU-a", "GPU-b"}), false);
  EXPECT_EQ(p.ordinal, 0);
  EXPECT_EQ(p.uuid, "GPU-a");
  EXPECT_FALSE(p.any_shared);
  EXPECT_THROW(place_on_gpus(nullptr, FakeDevices({}), false), ConfigError);
}

TEST(Placement, SrunWithoutPmiIsRefused) {
  std::map<std::string, std::string> env;
  auto look = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_EQ(slurm_singleton_problem(1, look), "");  // not under Slurm
  env["SLURM_NTASKS"] = "8";
  EXPECT_EQ(slurm_singleton_problem(1, look), "");  // the batch script itself (no task of a step)
  env["SLURM_PROCID"] = "3";
  const std::string m = slurm_singleton_problem(1, look);
  EXPECT_NE(m.find("8 tasks"), std::string::npos) << m;
  EXPECT_NE(m.find("--mpi=pmix"), std::string::npos) << m;
  EXPECT_EQ(slurm_singleton_problem(8, look), "");  // PMI worked: the world has the tasks
  env["SLURM_STEP_NUM_TASKS"] = "1";                // a one-task step inside a bigger allocation
  EXPECT_EQ(slurm_singleton_problem(1, look), "");
  env["SLURM_STEP_NUM_TASKS"] = "2";
  EXPECT_NE(slurm_singleton_problem(1, look).find("2 tasks"), std::string::npos);
  env["OMPI_COMM_WORLD_SIZE"] = "1";  // mpirun -np 1 inside the allocation sets its own world
  EXPECT_EQ(slurm_singleton_problem(1, look), "");
}

}  // namespace
}  // namespace sk::par
