# Logs people watch: TensorBoard event files read back by TensorBoard's Python reader, and the
# metrics plot. Included by tests/CMakeLists.txt.
if(NOT TARGET sk_trainer OR NOT TARGET sinkhorn)
  return()
endif()
add_executable(sk_tensorboard_write ${CMAKE_CURRENT_LIST_DIR}/tools/tensorboard_write.cpp)
target_link_libraries(sk_tensorboard_write PRIVATE sk_trainer sk_data)
target_include_directories(sk_tensorboard_write PRIVATE ${PROJECT_SOURCE_DIR})
sk_warnings(sk_tensorboard_write)
add_test(NAME logs_tensorboard_readback
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tensorboard_test.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}
                 $<TARGET_FILE:sk_tensorboard_write> $<TARGET_FILE:sinkhorn>)
set_tests_properties(logs_tensorboard_readback PROPERTIES LABELS "trainer;unit" TIMEOUT 600)
add_test(NAME logs_plot_metrics COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/plot_test.sh ${PROJECT_SOURCE_DIR} $<TARGET_FILE:sinkhorn>)
set_tests_properties(logs_plot_metrics PROPERTIES LABELS "trainer;unit" TIMEOUT 300 ENVIRONMENT "OMP_NUM_THREADS=2")
