// nccl_communicator.cpp — Communicator over NCCL (host C++; NCCL calls are host API).
//
// Creation: rank 0 of the MPI communicator makes an ncclUniqueId, MPI_Bcast sends it to every
// member, each calls ncclCommInitRank on its GPU. Operations run on the communicator's own
// non-blocking CUDA stream; a CUDA event recorded after each operation is what its Handle waits
// on (wait() also polls ncclCommGetAsyncError, so a failed peer surfaces as an error instead of
// a hang).
//
// Ordering with compute, without a host synchronisation: each call records an event on the CUDA
// backend's stream (Backend::native_stream) and makes the NCCL stream wait for it, so NCCL reads a
// buffer only after every kernel queued before the call wrote it; the caller must not touch a
// buffer until its handle is waited on (a host wait on the operation's own event).
// Every CUDA and NCCL call goes through CUDA_CHECK / NCCL_CHECK (call, file:line, error string,
// rank).
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <sched.h>

#include <cstdio>
#include <cstring>

#include "model/core/backend.h"
#include "model/core/error.h"
#include "parallel/communicator.h"
#include "parallel/watchdog.h"

namespace sk::par {
namespace {

void cuda_check(cudaError_t rc, const char* call, const char* file, int line) {
  if (rc == cudaSuccess) return;
  throw Error(cat("CUDA error: ", call, " at ", file, ":", line, " on ", rank_tag(), ": ", cudaGetErrorName(rc), ": ",
                  cudaGetErrorString(rc)));
}

void nccl_check(ncclResult_t rc, const char* call, const char* file, int line) {
  if (rc == ncclSuccess) return;
  throw Error(cat("NCCL error: ", call, " at ", file, ":", line, " on ", rank_tag(), ": ", ncclGetErrorString(rc)));
}

#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)
#define NCCL_CHECK(call) nccl_check((call), #call, __FILE__, __LINE__)

// For destructors: report, never throw.
void report(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess)
    std::fprintf(stderr, "sinkhorn: warning: %s failed on %s: %s\n", what, rank_tag().c_str(), cudaGetErrorString(rc));
}

ncclRedOp_t nccl_op(CollOp op) {
  switch (op) {
    case CollOp::sum: return ncclSum;
    case CollOp::avg: return ncclAvg;
    case CollOp::max: return ncclMax;
  }
  return ncclSum;
}

class NcclWork : public Handle::Impl {
 public:
  NcclWork(ncclComm_t comm, cudaStream_t stream, Tensor a, Tensor b) : comm_(comm), a_(std::move(a)), b_(std::move(b)) {
    CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(event_, stream));
  }
  ~NcclWork() override { report(cudaEventDestroy(event_), "cudaEventDestroy"); }

  void wait() override {
    while (!test()) sched_yield();
  }
  bool test() override {
    cudaError_t q = cudaEventQuery(event_);
    if (q == cudaSuccess) return true;
    if (q != cudaErrorNotReady) CUDA_CHECK(q);
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    if (async != ncclInProgress) NCCL_CHECK(async);
    return false;
  }

 private:
  ncclComm_t comm_;
  cudaEvent_t event_ = nullptr;
  Tensor a_, b_;  // buffers kept alive until done
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const MpiComm& comm, int device) : device_(device), mpi_(comm) {
    SK_CHECK(comm.valid(), "nccl communicator: null MPI communicator (this rank is not a member)");
    rank_ = comm.rank();
    size_ = comm.size();
    CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, comm.get()));
    NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    abort_id_ = Watchdog::on_abort([c = comm_] { ncclCommAbort(c); });  // a stuck job tears down without waiting
    cudaError_t rc = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (rc == cudaSuccess) rc = cudaEventCreateWithFlags(&order_, cudaEventDisableTiming);
    if (rc != cudaSuccess) {
      ncclCommDestroy(comm_);
      CUDA_CHECK(rc);
    }
  }
  ~NcclCommunicator() override {
    Watchdog::remove_abort(abort_id_);
    report(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    ncclResult_t rc = ncclCommDestroy(comm_);
    if (rc != ncclSuccess)
      std::fprintf(stderr, "sinkhorn: warning: ncclCommDestroy failed on %s: %s\n", rank_tag().c_str(),
                   ncclGetErrorString(rc));
    report(cudaEventDestroy(order_), "cudaEventDestroy");
    report(cudaStreamDestroy(stream_), "cudaStreamDestroy");
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* kind() const override { return "nccl"; }
  const MpiComm& mpi_comm() const override { return mpi_; }

 protected:
  bool supports(Device d) const override { return d == Device::cuda; }
  bool supports_bf16() const override { return true; }

  Handle do_all_reduce(Tensor& buf, CollOp op) override {
    before();
    NCCL_CHECK(ncclAllReduce(buf.raw(), buf.raw(), n(buf), dt(buf), nccl_op(op), comm_, stream_));
    return after(buf, Tensor());
  }
  Handle do_broadcast(Tensor& buf, int root) override {
    before();
    NCCL_CHECK(ncclBroadcast(buf.raw(), buf.raw(), n(buf), dt(buf), root, comm_, stream_));
    return after(buf, Tensor());
  }
  Handle do_all_gather(const Tensor& in, Tensor& out) override {
    before();
    NCCL_CHECK(ncclAllGather(in.raw(), out.raw(), n(in), dt(in), comm_, stream_));
    return after(in, out);
  }
  Handle do_reduce_scatter(const Tensor& in, Tensor& out, CollOp op) override {
    before();
    NCCL_CHECK(ncclReduceScatter(in.raw(), out.raw(), n(out), dt(out), nccl_op(op), comm_, stream_));
    return after(in, out);
  }
  Handle do_send(const Tensor& buf, int peer, int) override {
    before();
    NCCL_CHECK(ncclSend(buf.raw(), n(buf), dt(buf), peer, comm_, stream_));
    return after(buf, Tensor());
  }
  Handle do_recv(Tensor& buf, int peer, int) override {
    before();
    NCCL_CHECK(ncclRecv(buf.raw(), n(buf), dt(buf), peer, comm_, stream_));
    return after(buf, Tensor());
  }
  // Inside a group the operations are only queued until ncclGroupEnd; the events recorded by
  // after() then complete with the whole group (they follow it on the same stream).
  void do_group_start() override {
    before();
    NCCL_CHECK(ncclGroupStart());
    in_group_ = true;
  }
  void do_group_end() override {
    in_group_ = false;
    NCCL_CHECK(ncclGroupEnd());
  }

 private:
  static std::size_t n(const Tensor& t) { return static_cast<std::size_t>(t.numel()); }
  static ncclDataType_t dt(const Tensor& t) { return t.dtype() == DType::bf16 ? ncclBfloat16 : ncclFloat32; }
  void before() {
    if (in_group_) return;  // ordered by do_group_start
    CUDA_CHECK(cudaSetDevice(device_));
    auto* compute = static_cast<cudaStream_t>(backend_for(Device::cuda).native_stream());
    CUDA_CHECK(cudaEventRecord(order_, compute));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, order_, 0));
  }
  Handle after(const Tensor& a, const Tensor& b) {
    if (in_group_) return Handle(std::make_unique<GroupedWork>(this, a, b));
    return Handle(std::make_unique<NcclWork>(comm_, stream_, a, b));
  }
  // A grouped operation's handle: its completion event is recorded when first waited on, which
  // is after ncclGroupEnd (the caller waits only after group_end()).
  class GroupedWork : public Handle::Impl {
   public:
    GroupedWork(NcclCommunicator* c, Tensor a, Tensor b) : c_(c), a_(std::move(a)), b_(std::move(b)) {}
    void wait() override { work().wait(); }
    bool test() override { return work().test(); }

   private:
    NcclWork& work() {
      SK_CHECK(!c_->in_group_, "nccl: a grouped transfer was waited on before group_end()");
      if (!w_) w_ = std::make_unique<NcclWork>(c_->comm_, c_->stream_, a_, b_);
      return *w_;
    }
    NcclCommunicator* c_;
    Tensor a_, b_;
    std::unique_ptr<NcclWork> w_;
  };
  bool in_group_ = false;

  int device_;
  MpiComm mpi_;
  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t order_ = nullptr;  // compute-stream position each operation waits for
  int abort_id_ = -1;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const MpiComm& comm, int cuda_device) {
  SK_CHECK(has_backend(Device::cuda), "NCCL communicator requested but no CUDA device is available on ", rank_tag());
  return std::make_unique<NcclCommunicator>(comm, cuda_device);
}

bool nccl_compiled() { return true; }

}  // namespace sk::par
