// mpi_communicator.cpp — Communicator over MPI non-blocking calls, host-staged.
//
// Host tensors are handed to MPI directly (all_reduce/broadcast in place). Tensors on another
// device are copied to a host buffer when the call is made and copied back in wait()/test().
// MPI counts are ints: all_reduce, broadcast, send and recv split larger buffers into chunks of
// 2^30 elements (chunks of one send/recv pair match in posting order: MPI messages between two
// ranks with one tag do not overtake each other); all_gather and reduce_scatter need the
// per-rank count to fit an int. `avg` is a sum scaled by 1/size on the host.
#include <climits>
#include <cstdint>

#include "model/core/error.h"
#include "parallel/communicator.h"

namespace sk::par {
namespace {

constexpr std::int64_t kChunk = std::int64_t{1} << 30;

class MpiWork : public Handle::Impl {
 public:
  std::vector<MPI_Request> reqs;
  Tensor keep_in;       // input kept alive until done
  Tensor host_out;      // host buffer MPI writes into (undefined when the op writes nothing)
  Tensor copy_back_to;  // device tensor host_out is copied into when done (undefined: none)
  float scale = 1.f;    // applied to host_out when done (avg)

  void wait() override {
    if (!reqs.empty()) MPI_CHECK(MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE));
    finish();
  }
  bool test() override {
    int flag = 1;
    if (!reqs.empty()) MPI_CHECK(MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &flag, MPI_STATUSES_IGNORE));
    if (flag) finish();
    return flag != 0;
  }

 private:
  void finish() {
    if (scale != 1.f && host_out.defined()) {
      float* p = host_out.data<float>();
      for (std::int64_t i = 0, n = host_out.numel(); i < n; ++i) p[i] *= scale;
    }
    if (copy_back_to.defined()) copy_back_to.copy_from(host_out);
  }
};

// Host view of `t`: the tensor itself on the CPU, else a host copy (copy = true) or an
// uninitialised host buffer of the same shape.
Tensor host_view(const Tensor& t, bool copy) {
  if (t.device() == Device::cpu) return t;
  return copy ? t.to(Device::cpu) : Tensor::empty(t.shape(), DType::f32, Device::cpu);
}

MPI_Op mpi_op(CollOp op) { return op == CollOp::max ? MPI_MAX : MPI_SUM; }

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const MpiComm& comm) : comm_(comm) {
    SK_CHECK(comm_.valid(), "mpi communicator: null MPI communicator (this rank is not a member)");
    rank_ = comm_.rank();
    size_ = comm_.size();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* kind() const override { return "mpi"; }
  const MpiComm& mpi_comm() const override { return comm_; }

 protected:
  bool supports(Device) const override { return true; }

  Handle do_all_reduce(Tensor& buf, CollOp op) override {
    auto w = start_inout(buf, /*copy=*/true);
    float* p = w->host_out.data<float>();
    for (std::int64_t off = 0, n = buf.numel(); off < n; off += kChunk) {
      MPI_Request r;
      MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p + off, count(n - off), MPI_FLOAT, mpi_op(op), comm_.get(), &r));
      w->reqs.push_back(r);
    }
    if (op == CollOp::avg) w->scale = 1.f / static_cast<float>(size_);
    return Handle(std::move(w));
  }

  Handle do_broadcast(Tensor& buf, int root) override {
    auto w = start_inout(buf, /*copy=*/rank_ == root);
    float* p = w->host_out.data<float>();
    for (std::int64_t off = 0, n = buf.numel(); off < n; off += kChunk) {
      MPI_Request r;
      MPI_CHECK(MPI_Ibcast(p + off, count(n - off), MPI_FLOAT, root, comm_.get(), &r));
      w->reqs.push_back(r);
    }
    if (rank_ == root) w->copy_back_to = Tensor();  // the root's buffer is unchanged
    return Handle(std::move(w));
  }

  Handle do_all_gather(const Tensor& in, Tensor& out) override {
    SK_CHECK(in.numel() <= INT_MAX, "mpi all_gather: ", in.numel(), " elements per rank exceed MPI's int count");
    auto w = std::make_unique<MpiWork>();
    w->keep_in = host_view(in, true);
    w->host_out = host_view(out, false);
    if (out.device() != Device::cpu) w->copy_back_to = out;
    MPI_Request r;
    MPI_CHECK(MPI_Iallgather(w->keep_in.data<float>(), static_cast<int>(in.numel()), MPI_FLOAT,
                             w->host_out.data<float>(), static_cast<int>(in.numel()), MPI_FLOAT, comm_.get(), &r));
    w->reqs.push_back(r);
    return Handle(std::move(w));
  }

  Handle do_reduce_scatter(const Tensor& in, Tensor& out, CollOp op) override {
    SK_CHECK(out.numel() <= INT_MAX, "mpi reduce_scatter: ", out.numel(), " elements per rank exceed MPI's int count");
    auto w = std::make_unique<MpiWork>();
    w->keep_in = host_view(in, true);
    w->host_out = host_view(out, false);
    if (out.device() != Device::cpu) w->copy_back_to = out;
    MPI_Request r;
    MPI_CHECK(MPI_Ireduce_scatter_block(w->keep_in.data<float>(), w->host_out.data<float>(),
                                        static_cast<int>(out.numel()), MPI_FLOAT, mpi_op(op), comm_.get(), &r));
    w->reqs.push_back(r);
    if (op == CollOp::avg) w->scale = 1.f / static_cast<float>(size_);
    return Handle(std::move(w));
  }

  Handle do_send(const Tensor& buf, int peer, int tag) override {
    auto w = std::make_unique<MpiWork>();
    w->keep_in = host_view(buf, true);
    const float* p = w->keep_in.data<float>();
    for (std::int64_t off = 0, n = buf.numel(); off < n; off += kChunk) {
      MPI_Request r;
      MPI_CHECK(MPI_Isend(p + off, count(n - off), MPI_FLOAT, peer, tag, comm_.get(), &r));
      w->reqs.push_back(r);
    }
    return Handle(std::move(w));
  }

  Handle do_recv(Tensor& buf, int peer, int tag) override {
    auto w = start_inout(buf, /*copy=*/false);
    float* p = w->host_out.data<float>();
    for (std::int64_t off = 0, n = buf.numel(); off < n; off += kChunk) {
      MPI_Request r;
      MPI_CHECK(MPI_Irecv(p + off, count(n - off), MPI_FLOAT, peer, tag, comm_.get(), &r));
      w->reqs.push_back(r);
    }
    return Handle(std::move(w));
  }

 private:
  static int count(std::int64_t left) { return static_cast<int>(left < kChunk ? left : kChunk); }

  // A work item whose host_out is `buf` itself (host) or a staged copy copied back when done.
  static std::unique_ptr<MpiWork> start_inout(Tensor& buf, bool copy) {
    auto w = std::make_unique<MpiWork>();
    w->host_out = host_view(buf, copy);
    if (buf.device() != Device::cpu) w->copy_back_to = buf;
    return w;
  }

  MpiComm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const MpiComm& comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

}  // namespace sk::par
