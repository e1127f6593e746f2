// communicator.h — collectives and point-to-point over flat f32 buffers, asynchronous.
//
// Two implementations behind one interface:
//   make_mpi_communicator   host-staged MPI (CPU runs, or ranks sharing a GPU): device buffers are
//                           copied to the host, reduced by MPI's non-blocking calls, copied back in
//                           wait(). Works with tensors of any device.
//   make_nccl_communicator  NCCL on its own CUDA stream; the communicator is created from an NCCL
//                           id broadcast over MPI. CUDA tensors only. Builds without NCCL link
//                           no_nccl.cpp, where it throws a clear error.
//
// Every call returns a Handle at once. The buffers belong to the operation until the handle has
// been waited on (wait(), or test() returning true, or the handle's destructor): do not read or
// write them before. Handles keep the tensors' storage alive.
//
// Buffers are f32 tensors of any shape, used flat (numel elements). Sizes:
//   all_reduce(buf)           in place over all ranks
//   broadcast(buf, root)      in place; root's values everywhere
//   all_gather(in, out)       out.numel() == size * in.numel(); out = in_0 | in_1 | ... (rank order)
//   reduce_scatter(in, out)   in.numel() == size * out.numel(); out = op over ranks of chunk `rank` of in
//   send(buf, peer, tag) / recv(buf, peer, tag)   matching sizes on both sides. NCCL ignores `tag`
//                             (messages between two ranks arrive in the order they were posted).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/core/tensor.h"
#include "parallel/world.h"

namespace sk::par {

enum class CollOp { sum, avg, max };
const char* coll_op_name(CollOp op);

class Handle {
 public:
  struct Impl {
    virtual ~Impl() = default;
    virtual void wait() = 0;   // blocks until done and finishes the operation (copy-back etc.)
    virtual bool test() = 0;   // true when done (then finished as by wait)
  };
  Handle() = default;  // an already completed operation
  explicit Handle(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
  Handle(Handle&&) noexcept = default;
  Handle& operator=(Handle&& o);  // waits on the operation this handle held first
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();  // waits if still pending; an error there is printed (destructors do not throw)

  void wait();   // idempotent; throws sk::Error on a communication error; watched (watchdog.h)
  bool test();   // non-blocking completion check
  bool pending() const { return impl_ != nullptr; }
  // What the operation is, for the watchdog's message ("all_reduce (mpi, 4 ranks)").
  void set_what(std::string what) { what_ = std::move(what); }

 private:
  std::unique_ptr<Impl> impl_;
  std::string what_ = "a communication";
};

// Waits on every handle in order.
void wait_all(std::vector<Handle>& handles);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* kind() const = 0;  // "mpi" | "nccl"
  // The MPI communicator over the same processes (both kinds are built from one).
  virtual const MpiComm& mpi_comm() const = 0;

  // Public entry points check dtypes, sizes, devices and peers once, then call the do_* hooks.
  Handle all_reduce(Tensor& buf, CollOp op = CollOp::sum);
  Handle broadcast(Tensor& buf, int root);
  Handle all_gather(const Tensor& in, Tensor& out);
  Handle reduce_scatter(const Tensor& in, Tensor& out, CollOp op = CollOp::sum);
  Handle send(const Tensor& buf, int peer, int tag = 0);
  Handle recv(Tensor& buf, int peer, int tag = 0);
  // Transfers posted between group_start() and group_end() are issued together (NCCL:
  // ncclGroupStart / ncclGroupEnd, so that a send and a receive with the same peer cannot block
  // each other; MPI: non-blocking calls need no grouping). Wait on their handles after group_end().
  void group_start() { do_group_start(); }
  void group_end() { do_group_end(); }

 protected:
  // Whether this communicator can move buffers living on `d`, and bf16 buffers (reductions add
  // in bf16; NCCL only).
  virtual bool supports(Device d) const = 0;
  virtual bool supports_bf16() const { return false; }
  virtual Handle do_all_reduce(Tensor& buf, CollOp op) = 0;
  virtual Handle do_broadcast(Tensor& buf, int root) = 0;
  virtual Handle do_all_gather(const Tensor& in, Tensor& out) = 0;
  virtual Handle do_reduce_scatter(const Tensor& in, Tensor& out, CollOp op) = 0;
  virtual Handle do_send(const Tensor& buf, int peer, int tag) = 0;
  virtual Handle do_recv(Tensor& buf, int peer, int tag) = 0;
  virtual void do_group_start() {}
  virtual void do_group_end() {}

 private:
  void check_buf(const char* op, const char* what, const Tensor& t) const;
  std::string describe(const char* op, int peer = -1) const;
  void check_peer(const char* op, const char* what, int peer) const;
};

// Local (no communication); `comm` must include this rank.
std::unique_ptr<Communicator> make_mpi_communicator(const MpiComm& comm);
// Collective over `comm`'s processes. `cuda_device` is the GPU this rank uses (already selected by
// the CUDA backend; NCCL binds to it). Throws sk::Error in builds without NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(const MpiComm& comm, int cuda_device);
bool nccl_compiled();  // whether this binary was built with NCCL

}  // namespace sk::par
