// main.cpp — entry point of `sinkhorn`. Library code throws; only this file catches: it prints ONE
// line "sinkhorn: error: ..." (with the rank when several MPI processes run), calls MPI_Abort
// when MPI runs with more than one process (so the other ranks do not hang in a collective), and
// exits 1 (style.md §3.6).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "data/data_error.h"
#include "launch/cli.h"
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

int fail(const char* what) {
  std::string where;
  if (sk::par::World::running()) {
    int n = 1;
    if (MPI_Comm_size(MPI_COMM_WORLD, &n) == MPI_SUCCESS && n > 1) where = sk::par::rank_tag() + ": ";
  }
  std::fprintf(stderr, "sinkhorn: error: %s%s\n", where.c_str(), one_line(what).c_str());
  std::fflush(stderr);
  sk::par::World::abort_if_multi(1);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    sk::init_backends();
    std::vector<std::string> args(argv + 1, argv + argc);
    return sk::run_cli(args);
  } catch (const sk::Error& e) {
    return fail(e.what());
  } catch (const sk::data::DataError& e) {
    return fail(e.what());
  } catch (const sk::InternalError& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
