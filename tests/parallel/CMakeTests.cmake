# Multi-rank tests of parallel/: one executable run under mpirun with 2 and 4 processes on this
# machine (MPI communicator, process grid sub-communicators), plus the NCCL communicator (skipped
# visibly without NCCL or a GPU per rank). Included by tests/CMakeLists.txt.
if(NOT TARGET sk_parallel)
  return()
endif()
add_executable(sk_test_parallel_multirank ${CMAKE_CURRENT_LIST_DIR}/multirank/comm_test.cpp)
target_link_libraries(sk_test_parallel_multirank PRIVATE sk_parallel sk_backends GTest::gtest)
target_include_directories(sk_test_parallel_multirank PRIVATE ${PROJECT_SOURCE_DIR})
sk_warnings(sk_test_parallel_multirank)

set(_sk_mpirun ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe)
foreach(np 2 4)
  add_test(NAME parallel_multirank_mpi_np${np}
           COMMAND ${_sk_mpirun} -np ${np} $<TARGET_FILE:sk_test_parallel_multirank> --gtest_filter=-*/nccl)
  set_tests_properties(parallel_multirank_mpi_np${np} PROPERTIES LABELS "multirank" TIMEOUT 300
                       ENVIRONMENT "OMP_NUM_THREADS=1")
endforeach()
add_test(NAME parallel_multirank_nccl_np2
         COMMAND ${_sk_mpirun} -np 2 $<TARGET_FILE:sk_test_parallel_multirank> --gtest_filter=*/nccl)
set_tests_properties(parallel_multirank_nccl_np2 PROPERTIES LABELS "multirank;gpu" TIMEOUT 300
                     ENVIRONMENT "OMP_NUM_THREADS=1" SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")

# GPU placement (parallel/placement.h) across real ranks, devices faked: -np 2 and -np 4.
add_executable(sk_test_placement_multirank ${CMAKE_CURRENT_LIST_DIR}/multirank/placement_test.cpp)
target_link_libraries(sk_test_placement_multirank PRIVATE sk_parallel GTest::gtest)
target_include_directories(sk_test_placement_multirank PRIVATE ${PROJECT_SOURCE_DIR})
sk_warnings(sk_test_placement_multirank)
foreach(np 2 4)
  add_test(NAME parallel_placement_np${np}
           COMMAND ${_sk_mpirun} -np ${np} $<TARGET_FILE:sk_test_placement_multirank>)
  set_tests_properties(parallel_placement_np${np} PROPERTIES LABELS "parallel;multirank" TIMEOUT 300
                       ENVIRONMENT "OMP_NUM_THREADS=1")
endforeach()
