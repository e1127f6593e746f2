// communicator.cpp — Handle, and the argument checks shared by every Communicator.
#include "parallel/communicator.h"

#include <cstdio>

#include "model/core/error.h"
#include "parallel/watchdog.h"

namespace sk::par {

const char* coll_op_name(CollOp op) {
  switch (op) {
    case CollOp::sum: return "sum";
    case CollOp::avg: return "avg";
    case CollOp::max: return "max";
  }
  return "?";
}

// ---- Handle ----
Handle& Handle::operator=(Handle&& o) {
  if (this != &o) {
    wait();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

Handle::~Handle() {
  if (!impl_) return;
  try {
    impl_->wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sinkhorn: error: communication handle dropped with a failed operation: %s\n", e.what());
  }
}

void Handle::wait() {
  if (!impl_) return;
  auto impl = std::move(impl_);  // done (or failed) either way: never waited on twice
  Watchdog::Scope watch(what_.c_str());
  impl->wait();
}

bool Handle::test() {
  if (!impl_) return true;
  if (!impl_->test()) return false;
  impl_.reset();
  return true;
}

void wait_all(std::vector<Handle>& handles) {
  for (auto& h : handles) h.wait();
}

// ---- checks ----
void Communicator::check_buf(const char* op, const char* what, const Tensor& t) const {
  SK_CHECK(t.defined(), kind(), " ", op, ": ", what, " is an undefined tensor");
  SK_CHECK(t.dtype() == DType::f32 || (t.dtype() == DType::bf16 && supports_bf16()), kind(), " ", op, ": ", what,
           " must be f32", supports_bf16() ? " or bf16" : "", ", got ", t.str());
  SK_CHECK(supports(t.device()), kind(), " ", op, ": ", what, " ", t.str(), " is on a device this communicator cannot use",
           (t.device() == Device::cpu ? " (NCCL moves CUDA tensors only; use the MPI communicator for CPU runs)" : ""));
}

void Communicator::check_peer(const char* op, const char* what, int peer) const {
  SK_CHECK(peer >= 0 && peer < size(), kind(), " ", op, ": ", what, " ", peer, " is outside [0, ", size(), ")");
}

std::string Communicator::describe(const char* op, int peer) const {
  return peer < 0 ? cat(op, " (", kind(), ", ", size(), " ranks)") : cat(op, " (", kind(), ", with rank ", peer, " of ", size(), ")");
}

Handle Communicator::all_reduce(Tensor& buf, CollOp op) {
  check_buf("all_reduce", "buffer", buf);
  Handle h = do_all_reduce(buf, op);
  h.set_what(describe("all_reduce"));
  return h;
}

Handle Communicator::broadcast(Tensor& buf, int root) {
  check_buf("broadcast", "buffer", buf);
  check_peer("broadcast", "root", root);
  Handle h = do_broadcast(buf, root);
  h.set_what(describe("broadcast"));
  return h;
}

Handle Communicator::all_gather(const Tensor& in, Tensor& out) {
  check_buf("all_gather", "input", in);
  check_buf("all_gather", "output", out);
  SK_CHECK(in.device() == out.device(), kind(), " all_gather: input ", in.str(), " and output ", out.str(),
           " are on different devices");
  SK_CHECK(out.numel() == in.numel() * size(), kind(), " all_gather: output ", out.str(), " must hold ", size(),
           " x ", in.numel(), " elements");
  SK_CHECK(!in.shares_storage(out), kind(), " all_gather: input and output must not share storage");
  Handle h = do_all_gather(in, out);
  h.set_what(describe("all_gather"));
  return h;
}

Handle Communicator::reduce_scatter(const Tensor& in, Tensor& out, CollOp op) {
  check_buf("reduce_scatter", "input", in);
  check_buf("reduce_scatter", "output", out);
  SK_CHECK(in.device() == out.device(), kind(), " reduce_scatter: input ", in.str(), " and output ", out.str(),
           " are on different devices");
  SK_CHECK(in.numel() == out.numel() * size(), kind(), " reduce_scatter: input ", in.str(), " must hold ", size(),
           " x ", out.numel(), " elements");
  SK_CHECK(!in.shares_storage(out), kind(), " reduce_scatter: input and output must not share storage");
  Handle h = do_reduce_scatter(in, out, op);
  h.set_what(describe("reduce_scatter"));
  return h;
}

Handle Communicator::send(const Tensor& buf, int peer, int tag) {
  check_buf("send", "buffer", buf);
  check_peer("send", "peer", peer);
  SK_CHECK(peer != rank(), kind(), " send: rank ", rank(), " cannot send to itself");
  SK_CHECK(tag >= 0, kind(), " send: tag must be >= 0, got ", tag);
  Handle h = do_send(buf, peer, tag);
  h.set_what(describe("send", peer));
  return h;
}

Handle Communicator::recv(Tensor& buf, int peer, int tag) {
  check_buf("recv", "buffer", buf);
  check_peer("recv", "peer", peer);
  SK_CHECK(peer != rank(), kind(), " recv: rank ", rank(), " cannot receive from itself");
  SK_CHECK(tag >= 0, kind(), " recv: tag must be >= 0, got ", tag);
  Handle h = do_recv(buf, peer, tag);
  h.set_what(describe("recv", peer));
  return h;
}

}  // namespace sk::par
