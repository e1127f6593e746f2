# tests/gpu: CUDA-only checks (label `gpu`), included by tests/CMakeLists.txt.
# The executable is built in every configuration; without a GPU (or without CUDA) its tests skip
# visibly. With SK_CUDA it also gets the CUDA-specific tests (allocator, copies, deferred errors).
sk_test_dir(gpu gpu sk_cuda sk_cpu sk_core)
if(SK_CUDA AND TARGET sk_test_gpu)
  target_compile_definitions(sk_test_gpu PRIVATE SK_TEST_CUDA=1)
endif()
