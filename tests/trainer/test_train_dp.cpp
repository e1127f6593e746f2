// Data-parallel training under mpirun (tests/trainer/CMakeTests.cmake runs it with -np 2): a
// 2-rank run equals a 1-rank run of the same global batch. Built twice: into sk_test_trainer
// (no MPI there: the tests skip visibly) and, with SK_TRAIN_DP_MAIN, into its own MPI executable.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "model/backends.h"
#include "parallel/communicator.h"
#include "parallel/world.h"
#include "test_train_util.h"

namespace sk {
namespace {

par::World* g_world = nullptr;

// A folder name chosen by rank 0, the same on every rank.
std::string shared_dir(const std::string& name) {
  std::string d = g_world->rank() == 0 ? test::fresh_dir(name) : std::string();
  int n = static_cast<int>(d.size());
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD));
  d.resize(static_cast<std::size_t>(n));
  MPI_CHECK(MPI_Bcast(d.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD));
  return d;
}

class TrainDP : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_world || g_world->size() < 2) GTEST_SKIP() << "needs mpirun -np >= 2 (ctest train_dp_mpi_np2)";
    comm_ = par::make_mpi_communicator(g_world->comm());
  }
  std::unique_ptr<par::Communicator> comm_;
};

// Same global batch (4 rows), 2 ranks x 2 rows vs 1 rank x 4 rows, no dropout: equal up to float
// summation order. With dropout, 2 ranks x 1 micro-batch equals 1 rank x 2 micro-batches (same
// rows, same RNG keys per global sample).
TEST_F(TrainDP, TwoRanksEqualOneRank) {
  const std::string root = shared_dir("dp");
  TrainSpec s = test::tiny_spec();
  s.steps = 6;
  s.eval_interval = 6;
  s.eval_batches = 2;
  s.checkpoint_dir = root + "/dp";
  const TrainResult dp = run_training(s, comm_.get());
  ASSERT_EQ(dp.losses.size(), 6u);
  EXPECT_LT(dp.losses.back(), dp.losses.front());

  TrainSpec d = s;  // with dropout: 2 ranks x 1 micro-batch
  d.model.ff_dropout = 0.1;
  d.model.attn_dropout = 0.1;
  d.checkpoint_dir = root + "/dp_dropout";
  const TrainResult dpd = run_training(d, comm_.get());

  if (g_world->rank() == 0) {
    TrainSpec one = s;
    one.checkpoint_dir = root + "/one";
    const TrainResult r1 = run_training(one);
    for (std::size_t i = 0; i < 6; ++i) EXPECT_NEAR(dp.losses[i], r1.losses[i], 2e-4) << i;
    ASSERT_EQ(dp.val_losses.size(), 1u);
    EXPECT_NEAR(dp.val_losses[0], r1.val_losses[0], 2e-4);
    EXPECT_LT(test::max_abs_diff(s.checkpoint_dir + "/step-00000006/model-stage-0-of-1.safetensors",
                                 one.checkpoint_dir + "/step-00000006/model-stage-0-of-1.safetensors"),
              2e-4);

    TrainSpec oned = d;
    oned.grad_accum = 2;
    oned.checkpoint_dir = root + "/one_dropout";
    const TrainResult r1d = run_training(oned);
    for (std::size_t i = 0; i < 6; ++i) EXPECT_NEAR(dpd.losses[i], r1d.losses[i], 2e-4) << i;
    EXPECT_LT(test::max_abs_diff(d.checkpoint_dir + "/step-00000006/model-stage-0-of-1.safetensors",
                                 oned.checkpoint_dir + "/step-00000006/model-stage-0-of-1.safetensors"),
              2e-4);
  }
  g_world->barrier();
  if (g_world->rank() == 0) std::filesystem::remove_all(root);
}

// A checkpoint written by 2 ranks resumes on 2 ranks exactly like the uninterrupted run.
TEST_F(TrainDP, ResumeOnTwoRanks) {
  const std::string root = shared_dir("dp_resume");
  TrainSpec s = test::tiny_spec();
  s.steps = 6;
  s.checkpoint_dir = root + "/straight";
  const TrainResult full = run_training(s, comm_.get());
  TrainSpec a = s;
  a.steps = 3;
  a.checkpoint_dir = root + "/split";
  run_training(a, comm_.get());
  TrainSpec b = a;
  b.steps = 6;
  b.resume = true;
  const TrainResult second = run_training(b, comm_.get());
  ASSERT_EQ(second.losses.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(full.losses[i + 3], second.losses[i]) << i;
  g_world->barrier();
  if (g_world->rank() == 0) std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace sk

#ifdef SK_TRAIN_DP_MAIN
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int rc = 1;
  try {
    sk::par::World world(&argc, &argv);
    sk::g_world = &world;
    sk::init_backends(/*quiet=*/true);
    rc = RUN_ALL_TESTS();
    int worst = 0;
    MPI_CHECK(MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    rc = worst;
    sk::g_world = nullptr;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_dp: %s\n", e.what());
    sk::par::World::abort_if_multi(1);
    return 1;
  }
  return rc;
}
#endif
