// test_ops_main.cpp — instantiates the one ops suite (`Ops`, tests in tests/ops/*.cpp) for every
// device. The cuda instance skips visibly (GTEST_SKIP in the fixture) when this binary has no CUDA
// backend or no GPU, so ctest lists it as skipped rather than passed.
#include "tests/ops/ops_util.h"

namespace sk::test {

INSTANTIATE_TEST_SUITE_P(Dev, Ops, ::testing::Values(Device::cpu, Device::cuda),
                         [](const ::testing::TestParamInfo<Device>& i) { return std::string(device_name(i.param)); });

}  // namespace sk::test
