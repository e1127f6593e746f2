// main.cpp — entry point of `sinkhorn`. Library code throws; only this file catches: it prints ONE
// line "sinkhorn: error: ..." (with the rank when several MPI processes run), calls MPI_Abort
// when MPI runs with more than one process (so the other ranks do not hang in a collective), and
// exits with the error's code (style.md §3.6; README "Failure behaviour"):
//   0 done · 1 runtime failure · 2 config / command line / named file unusable (nothing written)
//   3 diverged · 4 stopped by a signal after saving
// Before anything else it fixes how idle OpenMP threads wait (launch/omp_policy.h): that must
// happen before the OpenMP runtime reads its environment.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "data/data_error.h"
#include "launch/cli.h"
#include "launch/omp_policy.h"
#include "model/backends.h"
#include "model/core/error.h"
#include "parallel/world.h"

namespace {

// The message on one line: newlines and tabs become spaces.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int fail(const char* what, int code) {
  std::string where;
  if (sk::par::World::running()) {
    int n = 1;
    if (MPI_Comm_size(MPI_COMM_WORLD, &n) == MPI_SUCCESS && n > 1) where = sk::par::rank_tag() + ": ";
  }
  const char* kind = code == sk::kExitStopped ? "stopped" : "error";
  std::fprintf(stderr, "sinkhorn: %s: %s%s\n", kind, where.c_str(), one_line(what).c_str());
  std::fflush(stderr);
  sk::par::World::abort_if_multi(code);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  sk::apply_omp_wait_policy(argc, argv);  // may re-execute this program (see omp_policy.h)
  try {
    sk::init_backends();
    std::vector<std::string> args(argv + 1, argv + argc);
    return sk::run_cli(args);
  } catch (const sk::Error& e) {
    return fail(e.what(), e.exit_code());
  } catch (const sk::data::DataError& e) {
    // data/ throws it for a dataset file that is missing, unreadable or too small, or bad sampler
    // sizes — found when the run is set up, before anything is written.
    return fail(e.what(), sk::kExitUsage);
  } catch (const sk::InternalError& e) {
    return fail(e.what(), sk::kExitFailure);
  } catch (const std::bad_alloc&) {
    return fail("out of host memory (std::bad_alloc)", sk::kExitFailure);
  } catch (const std::exception& e) {
    return fail(e.what(), sk::kExitFailure);
  }
}
