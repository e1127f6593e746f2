# Benchmarks are built here but never run by ctest (tests/bench/run_*.sh run them).
if(TARGET sk_data)
  add_executable(sk_data_bench ${CMAKE_CURRENT_LIST_DIR}/data_bench.cpp)
  target_link_libraries(sk_data_bench PRIVATE sk_data)
  target_include_directories(sk_data_bench PRIVATE ${PROJECT_SOURCE_DIR})
  set_target_properties(sk_data_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
  sk_warnings(sk_data_bench)
endif()
