// omp_policy.cpp — see omp_policy.h.
#include "launch/omp_policy.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sk {
namespace {
constexpr const char* kMarker = "SK_OMP_WAIT_POLICY_SET";
constexpr const char* kSpinCount = "1000";  // iterations an idle thread spins before it sleeps
}  // namespace

void apply_omp_wait_policy(int argc, char** argv) {
  (void)argc;
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") || std::getenv(kMarker)) return;
  if (setenv("GOMP_SPINCOUNT", kSpinCount, 1) != 0 || setenv(kMarker, "1", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Still here: exec failed (no /proc?). Carry on with the runtime's default policy.
  std::fprintf(stderr,
               "sinkhorn: warning: could not re-execute with GOMP_SPINCOUNT=%s (%s); idle OpenMP threads will "
               "spin long (set GOMP_SPINCOUNT=%s yourself when processes share cores)\n",
               kSpinCount, std::strerror(errno), kSpinCount);
  unsetenv("GOMP_SPINCOUNT");
}

std::string omp_wait_policy_description() {
  const char* p = std::getenv("OMP_WAIT_POLICY");
  const char* s = std::getenv("GOMP_SPINCOUNT");
  if (std::getenv(kMarker) && s && !p)
    return std::string("GOMP_SPINCOUNT=") + s + " (set by sinkhorn: idle threads spin briefly, then sleep)";
  std::string d;
  if (p) d = std::string(p) + " (OMP_WAIT_POLICY from the environment)";
  if (s) d += std::string(d.empty() ? "" : ", ") + "GOMP_SPINCOUNT=" + s + " (from the environment)";
  return d.empty() ? "the OpenMP runtime's default" : d;
}

}  // namespace sk
