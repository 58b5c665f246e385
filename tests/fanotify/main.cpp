// The fanotify root tier: skipped (exit 77, with the reason) when not run as root.
#include <gtest/gtest.h>

#include "sandbox.h"

int main(int argc, char** argv) {
  if (!corral::testing::running_as_root_or_explain("fanotify tests")) return 77;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
