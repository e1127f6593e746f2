// mpi_test_main.h — main() of a multi-rank gtest executable (run under mpirun): one World, every
// rank runs every test, rank 0 prints the report and the others only their failures (with their
// rank), and the exit code is the worst over the ranks.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <exception>
#include <functional>

#include "parallel/world.h"

namespace sk::par::test {

// Prints failed assertions with the rank in front (ranks other than 0 have no default printer).
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};

// `setup` runs once the World exists (e.g. to publish it to the tests); `name` prefixes messages.
inline int mpi_test_main(int argc, char** argv, const char* name, const std::function<void(World&)>& setup) {
  try {
    World world(&argc, &argv);
    setup(world);
    ::testing::InitGoogleTest(&argc, argv);
    if (world.rank() != 0) {  // rank 0 prints the report; the others print only their failures
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new FailurePrinter(world.rank()));
    }
    int rc = RUN_ALL_TESTS();
    int worst = 0;
    MPI_CHECK(MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (world.rank() == 0 && worst != rc) std::fprintf(stderr, "%s: a test failed on another rank\n", name);
    return worst;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    World::abort_if_multi(1);
    return 1;
  }
}

}  // namespace sk::par::test
