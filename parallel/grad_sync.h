// grad_sync.h — gradient synchronisation of one pipeline stage over its data-parallel group:
// buckets reduced as soon as backward has finished them (overlapping the rest of backward),
// optional ZeRO-1 sharding, optional bf16 on the wire.
//
// The stage's flat gradient buffer (numel a multiple of the group size R, zero-padded past the
// parameters) is cut into buckets of about `bucket_elems` elements, from its end backwards
// (parameters are registered in forward order, so backward finishes them roughly from the end);
// bucket boundaries are multiples of R. Each bucket is reduced by a ring: a reduce-scatter in
// R - 1 steps leaves rank j with the sum of chunk j of the bucket (chunk = bucket / R elements),
// averaged (× 1/R), and, without ZeRO, an all-gather in R - 1 steps gives every rank the whole
// averaged bucket. Each rank sends 2 (R - 1) / R of the gradient bytes per step (counted in
// bytes_sent()). With ZeRO-1 the all-gather is of the updated parameters instead (gather(), after
// the optimizer updated the owned chunks), so a step still sends 2 (R - 1) / R × the bytes.
//
// Readiness: the caller names units (a parameter's element range); a bucket starts when every
// unit overlapping it is ready (unit_ready), the rest start in finish(), which then waits for all.
// Only the last micro-batch's backward makes gradients final, so only it triggers reductions.
//
// How it progresses (host-staged MPI, CPU ranks): a communication thread runs the rings on its
// own duplicate of the data-parallel communicator with non-blocking MPI calls, testing for
// completion and yielding the core (a 20 µs sleep) between tests, so reductions progress while
// the main thread computes — MPI only progresses inside MPI calls, and the main thread's compute
// makes none for tens of milliseconds. A thread rather than MPI_Test calls sprinkled through
// backward: progress then does not depend on where the hooks fall, and the yielding wait keeps
// the thread from spinning on a core the OpenMP team needs. It needs MPI_THREAD_MULTIPLE; without
// it (World::thread_multiple() false) the rings run on the calling thread inside finish(), i.e.
// without overlap. Summation order is fixed by the ring (chunk c of a bucket is added up starting
// at rank c + 1), so a given bucketing gives the same bits on every run; another bucketing can
// change the order for R > 2.
// NCCL (one GPU per rank): the same buckets go to ncclAllReduce / ncclReduceScatter /
// ncclAllGather on the communicator's own stream as they become ready.
// bf16 wire (grad_reduce_dtype = "bf16"): every message carries bf16 (half the bytes); partial
// sums are added in f32 on arrival but rounded to bf16 on every hop, and the reduced chunk is
// rounded to bf16 before it is shared, so every rank holds the same (rounded) gradients.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/world.h"

namespace sk::par {

struct GradSyncOptions {
  std::int64_t bucket_elems = 0;  // target bucket size; 0 = one bucket
  bool zero = false;              // ZeRO-1: keep only this rank's chunks reduced (owned())
  bool bf16 = false;              // bf16 messages
  bool thread = true;             // MPI: run the rings on a communication thread (needs MPI_THREAD_MULTIPLE)
};

struct Range {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

class GradSync {
 public:
  // `flat`: the gradient buffer (f32, numel a multiple of the group's size); `units`: element
  // ranges of the parameters in it. `comm`: the data-parallel group (its kind decides NCCL or
  // MPI rings, which run on a duplicate of comm.mpi_comm()).
  GradSync(Communicator& comm, Tensor flat, std::vector<Range> units, const GradSyncOptions& o);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  void begin();                  // a new step: no unit ready
  void unit_ready(std::size_t u);  // unit u's gradient is final: start the buckets it completes
  // Starts every bucket not started yet and waits for all. Afterwards the gradients are averaged
  // over the group: everywhere (no ZeRO) or on owned() (ZeRO).
  void finish();
  // ZeRO: all-gathers every bucket's chunks of `values` (a buffer laid out like the gradients)
  // from their owners, after the optimizer updated the owned chunks.
  void gather(Tensor& values);

  const std::vector<Range>& buckets() const { return buckets_; }
  // The ranges whose reduced gradients this rank holds after finish(): chunk `rank` of every
  // bucket with ZeRO; the whole buffer without.
  const std::vector<Range>& owned() const { return owned_; }
  std::int64_t bytes_sent() const { return bytes_sent_; }  // since construction, by this rank
  double wait_seconds() const { return wait_s_; }          // exposed: time finish() and gather() waited
  bool overlapped() const { return worker_.joinable() || nccl_; }

 private:
  enum class Job { reduce, gather };
  struct Task {
    Job job;
    std::size_t bucket;
  };
  void start(std::size_t bucket);
  void run_ring(const Task& t, float* data);  // host ring on `data` (the bucket's host elements)
  void worker_loop();
  void submit(const Task& t);
  void wait_all();

  Communicator& comm_;
  bool nccl_ = false;
  MpiComm ring_comm_;  // duplicate of the group for the rings
  Tensor flat_;
  GradSyncOptions o_;
  int rank_ = 0, size_ = 1;
  std::vector<Range> buckets_, owned_;
  std::vector<std::vector<std::size_t>> bucket_units_;  // units overlapping each bucket
  std::vector<int> pending_;                            // per bucket: units not ready yet
  std::vector<bool> started_;
  std::vector<std::vector<std::size_t>> unit_buckets_;  // buckets each unit overlaps
  std::vector<Handle> handles_;                         // NCCL operations of the step
  std::vector<Tensor> staged_;                          // NCCL bf16 copies / MPI host copies of device buckets
  std::atomic<std::int64_t> bytes_sent_{0};
  double wait_s_ = 0;
  // The communication thread.
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Task> queue_;
  std::size_t submitted_ = 0, completed_ = 0;
  bool stop_ = false;
  std::string worker_error_;
};

}  // namespace sk::par
