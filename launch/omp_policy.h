// omp_policy.h — how idle OpenMP threads wait, decided before the OpenMP runtime starts.
//
// libgomp's default lets a thread that reaches a barrier spin for ~300k iterations before it
// sleeps. With every core busy that is right; with two processes (or oversubscribed mpirun ranks)
// on the same cores, each process's spinning threads take the CPU from the other's working ones,
// and both ran 24x slower than alone. Waiting passively (sleep in the kernel at once) shares the
// cores fairly: two processes then take about twice as long each as one alone
// (tests/bench/omp_sharing.sh, tests/bench/RESULTS.md).
//
// libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when the library is loaded — before main.
// So when neither is set, apply_omp_wait_policy sets OMP_WAIT_POLICY=passive and re-executes the
// program (/proc/self/exe, same arguments and environment otherwise). A user who sets either
// variable (e.g. OMP_WAIT_POLICY=active on a dedicated node) is left alone. SK_OMP_WAIT_POLICY_SET
// marks a process that sinkhorn re-executed, for `sinkhorn --version` and to never loop.
#pragma once
#include <string>

namespace sk {

// Call first thing in main(). Returns only when no re-execution is needed or it failed (then a
// warning is printed once and the program continues with the runtime's default).
void apply_omp_wait_policy(int argc, char** argv);

// "passive (set by sinkhorn)", "active (OMP_WAIT_POLICY from the environment)", ... for --version.
std::string omp_wait_policy_description();

}  // namespace sk
