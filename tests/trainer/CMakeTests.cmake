# Data-parallel training under mpirun: tests/trainer/test_train_dp.cpp as its own MPI executable
# (in sk_test_trainer the same tests skip: no MPI there), plus a CLI end-to-end run of
# `sinkhorn train` on 1 and 2 ranks. Included by tests/CMakeLists.txt.
if(NOT TARGET sk_trainer OR NOT TARGET sk_parallel)
  return()
endif()
add_executable(sk_test_train_dp ${CMAKE_CURRENT_LIST_DIR}/test_train_dp.cpp)
target_link_libraries(sk_test_train_dp PRIVATE sk_trainer sk_parallel sk_backends GTest::gtest)
target_include_directories(sk_test_train_dp PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(sk_test_train_dp PRIVATE SK_TRAIN_DP_MAIN=1 SK_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
sk_warnings(sk_test_train_dp)

set(_sk_train_mpirun ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe)
add_test(NAME train_dp_mpi_np2 COMMAND ${_sk_train_mpirun} -np 2 $<TARGET_FILE:sk_test_train_dp>)
set_tests_properties(train_dp_mpi_np2 PROPERTIES LABELS "trainer;multirank" TIMEOUT 600 ENVIRONMENT "OMP_NUM_THREADS=1")

if(TARGET sinkhorn)
  add_test(NAME train_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/train_cli_test.sh $<TARGET_FILE:sinkhorn>
                                  ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(train_cli PROPERTIES LABELS "trainer;launch;multirank" TIMEOUT 600 ENVIRONMENT "OMP_NUM_THREADS=1")
endif()

# Pipeline stages x replicas over real mpirun ranks (up to 4, oversubscribed): topology invariance
# against the one-process run and resharding across layouts (tests/trainer/pipeline_layouts_test.sh).
if(TARGET sinkhorn)
  add_test(NAME pipeline_layouts COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/pipeline_layouts_test.sh $<TARGET_FILE:sinkhorn>
                                         ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(pipeline_layouts PROPERTIES LABELS "trainer;multirank" TIMEOUT 900 ENVIRONMENT "OMP_NUM_THREADS=1"
                       RUN_SERIAL TRUE)
endif()

# Data-parallel gradient reduction over real mpirun ranks: buckets vs one-shot, ZeRO-1, resharding,
# bf16 messages, bytes per step (tests/trainer/grad_sync_test.sh).
if(TARGET sinkhorn)
  add_test(NAME grad_sync COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/grad_sync_test.sh $<TARGET_FILE:sinkhorn>
                                  ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(grad_sync PROPERTIES LABELS "trainer;multirank" TIMEOUT 900 ENVIRONMENT "OMP_NUM_THREADS=1"
                       RUN_SERIAL TRUE)
endif()

# Real corpora end to end: tokenizer + shards, TensorBoard, bits per byte, decoded samples, a
# 2-stage pipeline, changed-data resume, seed-free validation (tests/trainer/corpus_train_test.sh).
if(TARGET sinkhorn)
  add_test(NAME corpus_train COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/corpus_train_test.sh $<TARGET_FILE:sinkhorn>
                                     ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE} ${PROJECT_BINARY_DIR})
  set_tests_properties(corpus_train PROPERTIES LABELS "trainer;multirank" TIMEOUT 900 ENVIRONMENT "OMP_NUM_THREADS=1")
endif()

# Failure behaviour end to end on 1 and 2 real mpirun ranks: divergence, signals, kill -9, resume
# modes, the Slurm script, the run lock, up-front checks, full disk, metrics after a resume
# (tests/trainer/reliability_test.sh).
if(TARGET sinkhorn)
  add_test(NAME train_reliability COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/reliability_test.sh $<TARGET_FILE:sinkhorn>
                                          ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(train_reliability PROPERTIES LABELS "trainer;launch;multirank" TIMEOUT 900
                       ENVIRONMENT "OMP_NUM_THREADS=1" RUN_SERIAL TRUE)
endif()
