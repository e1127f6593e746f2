// world.cpp — MPI world, MPI_CHECK formatting, communicator ownership.
#include "parallel/world.h"

#include <cstdio>

#include "model/core/error.h"
#include "parallel/watchdog.h"

namespace sk::par {

bool World::running() {
  int init = 0, fin = 0;
  if (MPI_Initialized(&init) != MPI_SUCCESS || MPI_Finalized(&fin) != MPI_SUCCESS) return false;
  return init && !fin;
}

namespace {
std::string& rank_label() {
  static std::string label;
  return label;
}
}  // namespace

void set_rank_label(const std::string& label) { rank_label() = label; }

std::string rank_tag() {
  if (!World::running()) return "single process";
  if (!rank_label().empty()) return rank_label();
  int r = -1, n = -1;
  if (MPI_Comm_rank(MPI_COMM_WORLD, &r) != MPI_SUCCESS || MPI_Comm_size(MPI_COMM_WORLD, &n) != MPI_SUCCESS)
    return "unknown rank";
  return cat("rank ", r, " of ", n);
}

void mpi_check(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char buf[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(rc, buf, &len) != MPI_SUCCESS) std::snprintf(buf, sizeof buf, "MPI error code %d", rc);
  throw Error(cat("MPI error: ", call, " at ", file, ":", line, " on ", rank_tag(), ": ", buf));
}

// ---- MpiComm ----
MpiComm MpiComm::world() {
  MpiComm c;
  c.comm_ = std::make_shared<MPI_Comm>(MPI_COMM_WORLD);
  return c;
}

MpiComm MpiComm::adopt(MPI_Comm raw) {
  MpiComm c;
  if (raw == MPI_COMM_NULL) return c;
  c.comm_ = std::shared_ptr<MPI_Comm>(new MPI_Comm(raw), [](MPI_Comm* p) {
    // Freeing after MPI_Finalize is an error; a communicator outliving MPI is simply dropped.
    if (World::running() && *p != MPI_COMM_NULL) MPI_Comm_free(p);
    delete p;
  });
  return c;
}

int MpiComm::rank() const {
  SK_ASSERT(valid(), "MpiComm::rank on a null communicator");
  int r = 0;
  MPI_CHECK(MPI_Comm_rank(get(), &r));
  return r;
}

int MpiComm::size() const {
  SK_ASSERT(valid(), "MpiComm::size on a null communicator");
  int n = 0;
  MPI_CHECK(MPI_Comm_size(get(), &n));
  return n;
}

// ---- World ----
World::World(int* argc, char*** argv) {
  if (!running()) {
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) throw Error(cat("MPI_Init_thread failed with code ", rc));
    owns_ = true;
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      owns_ = false;
      throw Error(cat("MPI provides thread level ", provided, ", sinkhorn needs at least MPI_THREAD_FUNNELED"));
    }
  }
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  comm_ = MpiComm::world();
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  node_comm_ = MpiComm::adopt(node);
  MPI_CHECK(MPI_Comm_set_errhandler(node_comm_.get(), MPI_ERRORS_RETURN));
  local_rank_ = node_comm_.rank();
  local_size_ = node_comm_.size();
}

World::~World() {
  node_comm_ = MpiComm();
  comm_ = MpiComm();
  if (owns_ && running()) MPI_Finalize();
}

bool World::thread_multiple() {
  if (!running()) return false;
  int level = MPI_THREAD_SINGLE;
  if (MPI_Query_thread(&level) != MPI_SUCCESS) return false;
  return level >= MPI_THREAD_MULTIPLE;
}

MpiComm World::split(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, key, &out));
  if (out != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN));
  return MpiComm::adopt(out);
}

void World::barrier() const {
  Watchdog::Scope watch("MPI_Barrier (every rank)");
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

void World::abort_if_multi(int code) {
  if (!running()) return;
  int n = 1;
  if (MPI_Comm_size(MPI_COMM_WORLD, &n) != MPI_SUCCESS) n = 2;  // unknown: abort to be safe
  if (n > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace sk::par
