// cuBLAS is dlopened by the CUDA backend (model/cuda/cublas_api.h) instead of linked. Loading the
// library needs no GPU, so this runs on every machine with a CUDA build: every entry point must
// resolve and the status strings must come from the real library.
#include <gtest/gtest.h>

#include <string>

#if defined(SK_TEST_CUDA)
#include "model/cuda/cublas_api.h"

TEST(CublasApi, LoadsEveryEntryPointWithoutAGpu) {
  const sk::cublas::Api& a = sk::cublas::api();
  EXPECT_TRUE(sk::cublas::loaded());
  EXPECT_NE(a.create, nullptr);
  EXPECT_NE(a.destroy, nullptr);
  EXPECT_NE(a.set_stream, nullptr);
  EXPECT_NE(a.set_workspace, nullptr);
  EXPECT_NE(a.set_math_mode, nullptr);
  EXPECT_NE(a.sgemm_strided_batched, nullptr);
  EXPECT_NE(a.gemm_strided_batched_ex, nullptr);
  ASSERT_NE(a.status_name, nullptr);
  ASSERT_NE(a.status_string, nullptr);
  EXPECT_STREQ(a.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
  EXPECT_NE(std::string(a.status_string(CUBLAS_STATUS_INVALID_VALUE)).size(), 0u);
}
#else
TEST(CublasApi, LoadsEveryEntryPointWithoutAGpu) { GTEST_SKIP() << "built without CUDA"; }
#endif
