// reference_check_driver.cpp — stand-alone runner of one reference case, used by the reference
// ctests while the `sinkhorn` CLI is not built:
//   sk_reference_check CASE_DIR --dump OUT [--mode eval|train]
// Same arguments and behaviour as `sinkhorn reference-check`.
#include <cstdio>
#include <exception>
#include <string>

#include "launch/reference_check.h"
#include "model/backends.h"
#include "model/core/error.h"

int main(int argc, char** argv) {
  std::string case_dir, dump, mode = "eval";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dump" && i + 1 < argc) dump = argv[++i];
    else if (a == "--mode" && i + 1 < argc) mode = argv[++i];
    else if (case_dir.empty() && a.rfind("--", 0) != 0) case_dir = a;
    else {
      std::fprintf(stderr, "usage: %s CASE_DIR --dump OUT [--mode eval|train]\n", argv[0]);
      return 2;
    }
  }
  if (case_dir.empty() || dump.empty()) {
    std::fprintf(stderr, "usage: %s CASE_DIR --dump OUT [--mode eval|train]\n", argv[0]);
    return 2;
  }
  try {
    sk::init_backends(/*quiet=*/true);
    return sk::reference_check_main(case_dir, dump, mode);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
