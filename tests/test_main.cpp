// Shared gtest main: registers the backends once, then runs the tests.
#include <gtest/gtest.h>

#include "model/backends.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  sk::init_backends(/*quiet=*/true);
  return RUN_ALL_TESTS();
}
