// world.h — the MPI world of one job: init/finalize, rank, size, local rank, sub-communicators,
// and MPI_CHECK (style.md §3.6). The only MPI state is MPI's own; World is an RAII owner of the
// MPI_Init_thread / MPI_Finalize pair (one per process, created by launch/).
//
//   sk::par::World world(&argc, &argv);      // MPI_THREAD_FUNNELED
//   world.rank(), world.size(), world.local_rank()   // local: ranks on this node (shared memory)
//   world.node_comm()                                // the ranks of this node
//   sk::par::MpiComm dp = world.split(color, key);   // a sub-communicator (MPI_Comm_split)
//
// Every MPI call goes through MPI_CHECK(call): on failure it throws sk::Error
//   "MPI error: MPI_Allreduce(...) at parallel/x.cpp:12 on rank 3 of 8: <MPI error string>".
// World switches MPI_COMM_WORLD to MPI_ERRORS_RETURN so that errors reach MPI_CHECK instead of
// aborting inside MPI.
#pragma once
// C API only: the MPI C++ bindings are deprecated and warn under -Wextra.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <memory>
#include <string>

namespace sk::par {

// Throws sk::Error for rc != MPI_SUCCESS, naming the call, file:line, MPI's error string and the
// rank. Formatting lives in world.cpp.
void mpi_check(int rc, const char* call, const char* file, int line);

#define MPI_CHECK(call) ::sk::par::mpi_check((call), #call, __FILE__, __LINE__)

// "rank 3 of 8" when MPI is running, "single process" otherwise (for messages); once the process
// grid is known, the label set by set_rank_label, e.g. "rank 6 (stage 1/2, replica 2/4)".
std::string rank_tag();
void set_rank_label(const std::string& label);  // "" = back to "rank R of N"

// Shared owner of a communicator made by World::split (MPI_Comm_free when the last copy goes).
class MpiComm {
 public:
  MpiComm() = default;
  static MpiComm world();                       // MPI_COMM_WORLD (never freed)
  static MpiComm adopt(MPI_Comm c);             // takes ownership of c
  MPI_Comm get() const { return comm_ ? *comm_ : MPI_COMM_NULL; }
  bool valid() const { return get() != MPI_COMM_NULL; }
  int rank() const;
  int size() const;

 private:
  std::shared_ptr<MPI_Comm> comm_;
};

class World {
 public:
  // MPI_Init_thread(MPI_THREAD_MULTIPLE) unless MPI is already initialised (then this World does
  // not finalise it). Throws if MPI cannot give at least FUNNELED.
  World(int* argc, char*** argv);
  ~World();  // MPI_Finalize when this World initialised MPI
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this node
  int local_size() const { return local_size_; }
  const MpiComm& comm() const { return comm_; }
  // The processes of this node (MPI_Comm_split_type shared memory), ordered by world rank.
  const MpiComm& node_comm() const { return node_comm_; }

  // Collective over the world: processes with the same color form one communicator, ordered by key.
  MpiComm split(int color, int key) const;
  void barrier() const;

  // Whether MPI is initialised and not yet finalised in this process.
  static bool running();
  // Whether MPI runs at MPI_THREAD_MULTIPLE (World asks for it; FUNNELED is the minimum): then a
  // communication thread may call MPI on its own communicator while the main thread does too.
  static bool thread_multiple();
  // MPI_Abort(MPI_COMM_WORLD, code) when MPI is running with more than one process, so other
  // ranks do not hang in a collective; otherwise returns (the caller exits normally).
  static void abort_if_multi(int code);

 private:
  bool owns_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MpiComm comm_, node_comm_;
};

}  // namespace sk::par
