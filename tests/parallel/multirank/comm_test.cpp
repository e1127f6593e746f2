// Multi-rank communicator tests, run under mpirun (-np 2 and -np 4; see ../CMakeTests.cmake).
// Every rank runs every test; results are checked on every rank with non-fatal EXPECTs so that no
// rank leaves a collective early. The exit code is the maximum over ranks.
//
// Covered: all_reduce (sum/avg/max), broadcast, all_gather, reduce_scatter (sum/avg), send/recv
// ring, test() polling, sub-communicators of the process grid, argument errors, MPI_CHECK's
// message. The host-staged path for CUDA tensors and the NCCL communicator run when a GPU backend
// is present (NCCL only with one GPU per rank); elsewhere they are skipped visibly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "model/backends.h"
#include "model/core/backend.h"
#include "model/core/error.h"
#include "parallel/communicator.h"
#include "parallel/grid.h"
#include "parallel/world.h"
#include "tests/parallel/multirank/mpi_test_main.h"

namespace sk::par {
namespace {

World* g_world = nullptr;

// Value of element i on rank r (exactly representable, distinct per rank).
float val(int r, std::int64_t i) { return static_cast<float>((r + 1) * 1000 + (i % 997)); }

Tensor rank_tensor(int r, std::int64_t n, Device d) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = val(r, i);
  return Tensor::from_vector(v, {n}, d);
}

std::vector<Device> devices_for(const std::string& kind) {
  std::vector<Device> out;
  if (kind == "mpi") {
    out.push_back(Device::cpu);
    if (has_backend(Device::cuda)) out.push_back(Device::cuda);
  } else if (has_backend(Device::cuda)) {
    out.push_back(Device::cuda);
  }
  return out;
}

class Comm : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "nccl" && !nccl_ok()) GTEST_SKIP() << "NCCL communicator not available here: " << nccl_reason();
    comm_ = GetParam() == "mpi" ? make_mpi_communicator(g_world->comm())
                                : make_nccl_communicator(g_world->comm(), g_world->local_rank());
    devs_ = devices_for(GetParam());
  }
  static bool nccl_ok() { return nccl_reason().empty(); }
  static std::string nccl_reason() {
    if (!nccl_compiled()) return "built without NCCL";
    if (!has_backend(Device::cuda)) return "no CUDA device";
    if (g_world->local_size() > 1 && std::getenv("SK_TEST_NCCL_MULTI_GPU") == nullptr)
      return "ranks share this node's GPU(s); set SK_TEST_NCCL_MULTI_GPU=1 when each rank has its own GPU";
    return "";
  }
  std::unique_ptr<Communicator> comm_;
  std::vector<Device> devs_;
};

TEST_P(Comm, AllReduceSumAvgMax) {
  const int n = comm_->size();
  for (Device d : devs_) {
    for (CollOp op : {CollOp::sum, CollOp::avg, CollOp::max}) {
      const std::int64_t len = 10007;
      Tensor t = rank_tensor(comm_->rank(), len, d);
      comm_->all_reduce(t, op).wait();
      auto got = t.to_vector<float>();
      for (std::int64_t i = 0; i < len; i += 97) {
        double sum = 0, mx = -1e30;
        for (int r = 0; r < n; ++r) {
          sum += val(r, i);
          mx = std::max(mx, static_cast<double>(val(r, i)));
        }
        double want = op == CollOp::sum ? sum : op == CollOp::avg ? sum / n : mx;
        EXPECT_NEAR(got[static_cast<std::size_t>(i)], want, 1e-3 * std::abs(want))
            << coll_op_name(op) << " on " << device_name(d) << " at " << i;
      }
    }
  }
}

TEST_P(Comm, Broadcast) {
  for (Device d : devs_) {
    const int root = comm_->size() - 1;
    Tensor t = rank_tensor(comm_->rank(), 333, d);
    comm_->broadcast(t, root).wait();
    EXPECT_EQ(t.to_vector<float>(), rank_tensor(root, 333, Device::cpu).to_vector<float>()) << device_name(d);
  }
}

TEST_P(Comm, AllGather) {
  const int n = comm_->size();
  for (Device d : devs_) {
    Tensor in = rank_tensor(comm_->rank(), 101, d);
    Tensor out = Tensor::zeros({n, 101}, DType::f32, d);
    comm_->all_gather(in, out).wait();
    auto got = out.to_vector<float>();
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < 101; ++i) EXPECT_EQ(got[static_cast<std::size_t>(r * 101 + i)], val(r, i)) << device_name(d);
  }
}

TEST_P(Comm, ReduceScatterSumAndAvg) {
  const int n = comm_->size(), me = comm_->rank();
  const std::int64_t chunk = 50;
  for (Device d : devs_) {
    for (CollOp op : {CollOp::sum, CollOp::avg}) {
      Tensor in = rank_tensor(me, chunk * n, d);
      Tensor out = Tensor::zeros({chunk}, DType::f32, d);
      comm_->reduce_scatter(in, out, op).wait();
      auto got = out.to_vector<float>();
      for (std::int64_t i = 0; i < chunk; ++i) {
        double sum = 0;
        for (int r = 0; r < n; ++r) sum += val(r, me * chunk + i);
        double want = op == CollOp::sum ? sum : sum / n;
        EXPECT_NEAR(got[static_cast<std::size_t>(i)], want, 1e-3 * want) << device_name(d) << " " << coll_op_name(op);
      }
    }
  }
}

TEST_P(Comm, SendRecvRing) {
  const int n = comm_->size(), me = comm_->rank();
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  for (Device d : devs_) {
    Tensor out = rank_tensor(me, 777, d);
    Tensor in = Tensor::zeros({777}, DType::f32, d);
    std::vector<Handle> hs;
    if (me % 2 == 0) {  // even ranks send first: works for blocking NCCL point-to-point too
      hs.push_back(comm_->send(out, next, 3));
      hs.back().wait();
      hs.push_back(comm_->recv(in, prev, 3));
    } else {
      hs.push_back(comm_->recv(in, prev, 3));
      hs.back().wait();
      hs.push_back(comm_->send(out, next, 3));
    }
    wait_all(hs);
    EXPECT_EQ(in.to_vector<float>(), rank_tensor(prev, 777, Device::cpu).to_vector<float>()) << device_name(d);
  }
}

TEST_P(Comm, TestPollsUntilDone) {
  Tensor t = rank_tensor(comm_->rank(), 4096, devs_.front());
  Handle h = comm_->all_reduce(t);
  EXPECT_TRUE(h.pending());
  while (!h.test()) {
  }
  EXPECT_FALSE(h.pending());
  h.wait();  // idempotent
  double want = 0;
  for (int r = 0; r < comm_->size(); ++r) want += val(r, 5);
  EXPECT_FLOAT_EQ(t.to_vector<float>()[5], static_cast<float>(want));
}

TEST_P(Comm, ArgumentErrorsAreLocal) {
  Device d = devs_.front();
  Tensor t = Tensor::zeros({8}, DType::f32, d);
  EXPECT_THROW(comm_->send(t, comm_->rank(), 0), Error);
  EXPECT_THROW(comm_->send(t, comm_->size(), 0), Error);
  EXPECT_THROW(comm_->broadcast(t, -1), Error);
  Tensor wrong = Tensor::zeros({7}, DType::f32, d);
  EXPECT_THROW(comm_->all_gather(t, wrong), Error);
  EXPECT_THROW(comm_->reduce_scatter(wrong, t), Error);
  Tensor ints = Tensor::zeros({8}, DType::i64, d);
  EXPECT_THROW(comm_->all_reduce(ints), Error);
}

INSTANTIATE_TEST_SUITE_P(Parallel, Comm, ::testing::Values(std::string("mpi"), std::string("nccl")),
                         [](const auto& info) { return info.param; });

TEST(World, RanksAndLocalRanks) {
  EXPECT_GE(g_world->size(), 2);
  EXPECT_GE(g_world->rank(), 0);
  EXPECT_LT(g_world->rank(), g_world->size());
  // All ranks of this test share one node.
  EXPECT_EQ(g_world->local_size(), g_world->size());
  EXPECT_EQ(g_world->local_rank(), g_world->rank());
  EXPECT_NE(rank_tag().find("of " + std::to_string(g_world->size())), std::string::npos);
}

TEST(World, MpiCheckNamesCallAndRank) {
  float x = 0;
  try {
    MPI_CHECK(MPI_Send(&x, 1, MPI_FLOAT, g_world->size() + 5, 0, MPI_COMM_WORLD));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("MPI_Send("), std::string::npos) << m;
    EXPECT_NE(m.find("comm_test.cpp:"), std::string::npos) << m;
    EXPECT_NE(m.find("rank " + std::to_string(g_world->rank())), std::string::npos) << m;
  }
}

TEST(World, GridSubCommunicators) {
  const int n = g_world->size();
  const int P = n % 2 == 0 ? 2 : 1;
  Grid grid = Grid::for_world(n, P);
  const int me = g_world->rank();
  GridCoord c = grid.coord_of(me);
  MpiComm dp = g_world->split(grid.dp_color(me), c.replica);
  MpiComm pp = g_world->split(grid.pp_color(me), c.stage);
  auto dpc = make_mpi_communicator(dp);
  auto ppc = make_mpi_communicator(pp);
  EXPECT_EQ(dpc->size(), grid.replicas());
  EXPECT_EQ(dpc->rank(), c.replica);
  EXPECT_EQ(ppc->size(), grid.stages());
  EXPECT_EQ(ppc->rank(), c.stage);

  // DP all-reduce sums over the ranks of this stage only.
  Tensor t = Tensor::full({4}, static_cast<float>(me), Device::cpu);
  dpc->all_reduce(t).wait();
  float want = 0;
  for (int r : grid.dp_group(c.stage)) want += static_cast<float>(r);
  EXPECT_EQ(t.to_vector<float>()[0], want);

  // Pipeline neighbours: stage 0 sends its rank to stage 1 of the same replica.
  if (P == 2) {
    Tensor msg = Tensor::full({3}, static_cast<float>(me), Device::cpu);
    if (c.stage == 0) {
      ppc->send(msg, 1, 7).wait();
    } else {
      ppc->recv(msg, 0, 7).wait();
      EXPECT_EQ(msg.to_vector<float>()[2], static_cast<float>(grid.prev_stage_rank(me)));
    }
  }
}

}  // namespace

}  // namespace sk::par

int main(int argc, char** argv) {
  return sk::par::test::mpi_test_main(argc, argv, "multirank", [](sk::par::World& w) {
    sk::par::g_world = &w;
    sk::init_backends(/*quiet=*/true);
  });
}
