# CLI tests: run the built `sinkhorn` binary (tests/launch/cli_test.sh, one ctest per case).
# Included by tests/CMakeLists.txt.
if(NOT TARGET sinkhorn)
  return()
endif()
foreach(case help version no_command unknown_command unknown_option missing_config bad_key bad_type bad_value
        bad_model_value bad_syntax bad_set bad_set_form bad_steps bad_steps_type bad_device reference_check_args
        bench_smoke unknown_before_missing parallel_table train_refused runtime_error reference_check_bad_batch
        omp_policy mpirun_exit_code)
  add_test(NAME launch_cli_${case}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh $<TARGET_FILE:sinkhorn> ${PROJECT_SOURCE_DIR} ${case})
  set_tests_properties(launch_cli_${case} PROPERTIES LABELS "unit;launch" TIMEOUT 300
                       ENVIRONMENT "OMP_NUM_THREADS=2;SK_MPIEXEC=${MPIEXEC_EXECUTABLE}")
endforeach()
# `sinkhorn sample` and checkpoint.init_from end to end (tests/launch/sample_cli_test.sh).
add_test(NAME launch_sample_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sample_cli_test.sh $<TARGET_FILE:sinkhorn>
                                        ${PROJECT_SOURCE_DIR})
set_tests_properties(launch_sample_cli PROPERTIES LABELS "unit;launch;trainer" TIMEOUT 300 ENVIRONMENT "OMP_NUM_THREADS=2")
# `sinkhorn tokenize` and the tinyshakespeare_bpe recipe (tests/launch/tokenize_cli_test.sh).
add_test(NAME launch_tokenize_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tokenize_cli_test.sh $<TARGET_FILE:sinkhorn>
                                          ${PROJECT_SOURCE_DIR})
set_tests_properties(launch_tokenize_cli PROPERTIES LABELS "unit;launch;data" TIMEOUT 300)
