// omp_policy.h — how idle OpenMP threads wait, decided before the OpenMP runtime starts.
//
// libgomp's default lets a thread that reaches a barrier spin for 300000 iterations before it
// sleeps. With every core to itself that is fastest; with two processes (or oversubscribed mpirun
// ranks) on the same cores, each process's spinning threads take the CPU from the other's working
// ones: two sinkhorn processes on 2 cores ran 3.5-22x slower than alone. Spinning 1000 iterations,
// then sleeping, gives two processes about half each (1.8-2.0x); alone it measured 0-13 % slower
// than libgomp's default on a noisy 2-core VM, sleeping at once (OMP_WAIT_POLICY=passive) 7-12 %
// (a futex wake per parallel region). Figures: tests/bench/omp_sharing.sh, tests/bench/RESULTS.md §5.
//
// libgomp reads GOMP_SPINCOUNT / OMP_WAIT_POLICY once, when the library is loaded — before main.
// So when neither is set, apply_omp_wait_policy sets GOMP_SPINCOUNT=1000 and re-executes the
// program (/proc/self/exe, same arguments and environment otherwise). A user who sets either
// variable (e.g. OMP_WAIT_POLICY=active on a dedicated node) is left alone. SK_OMP_WAIT_POLICY_SET
// marks a process that sinkhorn re-executed, for `sinkhorn --version` and to never loop.
#pragma once
#include <string>

namespace sk {

// Call first thing in main(). Returns only when no re-execution is needed or it failed (then a
// warning is printed once and the program continues with the runtime's default).
void apply_omp_wait_policy(int argc, char** argv);

// "GOMP_SPINCOUNT=1000 (set by sinkhorn: ...)", "active (OMP_WAIT_POLICY from the environment)",
// ... for `sinkhorn --version`.
std::string omp_wait_policy_description();

}  // namespace sk
