// grad_sync.cpp — bucketed, overlapped gradient reduction (see grad_sync.h).
#include "parallel/grad_sync.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "model/core/backend.h"
#include "model/core/dtype.h"
#include "model/core/error.h"
#include "parallel/watchdog.h"

namespace sk::par {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for MPI requests without spinning: test, then yield the core for 20 µs.
void wait_yielding(MPI_Request* reqs, int n) {
  Watchdog::Scope watch("a gradient-reduction ring step");
  for (;;) {
    int flag = 0;
    MPI_CHECK(MPI_Testall(n, reqs, &flag, MPI_STATUSES_IGNORE));
    if (flag) return;
    timespec ts{0, 20'000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

GradSync::GradSync(Communicator& comm, Tensor flat, std::vector<Range> units, const GradSyncOptions& o)
    : comm_(comm), flat_(std::move(flat)), o_(o) {
  rank_ = comm.rank();
  size_ = comm.size();
  nccl_ = std::string(comm.kind()) == "nccl";
  const std::int64_t n = flat_.numel(), R = size_;
  SK_CHECK(flat_.dtype() == DType::f32 && n % R == 0, "grad sync: the flat gradient buffer (", flat_.str(),
           ") must be f32 with a multiple of the group size ", R, " elements");
  // Buckets from the end backwards, boundaries on multiples of R.
  const std::int64_t target = o.bucket_elems > 0 ? std::max<std::int64_t>(R, o.bucket_elems / R * R) : n;
  std::vector<Range> rev;
  for (std::int64_t e = n; e > 0;) {
    const std::int64_t b = std::max<std::int64_t>(0, e - target);
    rev.push_back({b, e});
    e = b;
  }
  if (rev.empty()) rev.push_back({0, 0});
  buckets_ = rev;  // reduction order: the end of the buffer first
  unit_buckets_.resize(units.size());
  bucket_units_.resize(buckets_.size());
  for (std::size_t u = 0; u < units.size(); ++u)
    for (std::size_t b = 0; b < buckets_.size(); ++b)
      if (units[u].begin < buckets_[b].end && units[u].end > buckets_[b].begin && units[u].size() > 0) {
        unit_buckets_[u].push_back(b);
        bucket_units_[b].push_back(u);
      }
  for (const Range& b : buckets_) {
    if (!o.zero) continue;
    const std::int64_t c = b.size() / R;
    owned_.push_back({b.begin + rank_ * c, b.begin + (rank_ + 1) * c});
  }
  if (!o.zero) owned_ = {{0, n}};
  pending_.assign(buckets_.size(), 0);
  started_.assign(buckets_.size(), false);
  staged_.resize(buckets_.size());
  if (!nccl_) {
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_dup(comm.mpi_comm().get(), &dup));
    MPI_CHECK(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
    ring_comm_ = MpiComm::adopt(dup);
    if (o.thread && World::thread_multiple()) worker_ = std::thread([this] { worker_loop(); });
  }
}

GradSync::~GradSync() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
}

void GradSync::begin() {
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    pending_[b] = static_cast<int>(bucket_units_[b].size());
    started_[b] = false;
  }
  handles_.clear();
}

void GradSync::unit_ready(std::size_t u) {
  SK_ASSERT(u < unit_buckets_.size(), "grad sync: unit ", u, " out of range");
  for (std::size_t b : unit_buckets_[u])
    if (--pending_[b] == 0) start(b);
}

void GradSync::start(std::size_t b) {
  if (started_[b]) return;
  started_[b] = true;
  const Range& r = buckets_[b];
  if (r.size() == 0) return;
  const std::int64_t c = r.size() / size_;
  Tensor view = flat_.slice0(r.begin, r.end);
  if (nccl_) {
    const std::int64_t elem = o_.bf16 ? 2 : 4;
    Tensor buf = view;
    if (o_.bf16) {
      staged_[b] = backend_of(view).cast(view, DType::bf16);
      buf = staged_[b];
    }
    if (o_.zero) {  // into a separate chunk (NCCL's in-place form needs no aliasing checks; ours forbid it)
      Tensor mine = Tensor::empty({c}, buf.dtype(), buf.device());
      handles_.push_back(comm_.reduce_scatter(buf, mine, CollOp::avg));
      staged_[b] = mine;  // copied (bf16: cast) into the owned chunk after the wait
      bytes_sent_ += (size_ - 1) * c * elem;
    } else {
      handles_.push_back(comm_.all_reduce(buf, CollOp::avg));
      bytes_sent_ += 2 * (size_ - 1) * c * elem;
    }
    return;
  }
  if (view.device() != Device::cpu) staged_[b] = view.to(Device::cpu);  // host-staged MPI for device buffers
  submit({Job::reduce, b});
}

void GradSync::submit(const Task& t) {
  if (!worker_.joinable()) {  // no communication thread: run it here
    Tensor& host = staged_[t.bucket].defined() ? staged_[t.bucket] : flat_;
    float* base = host.data<float>() + (staged_[t.bucket].defined() ? 0 : buckets_[t.bucket].begin);
    run_ring(t, base);
    ++submitted_;
    ++completed_;
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(t);
    ++submitted_;
  }
  cv_.notify_one();
}

void GradSync::worker_loop() {
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_
      t = queue_.front();
      queue_.pop_front();
    }
    try {
      Tensor& host = staged_[t.bucket].defined() ? staged_[t.bucket] : flat_;
      float* base = host.data<float>() + (staged_[t.bucket].defined() ? 0 : buckets_[t.bucket].begin);
      run_ring(t, base);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(mu_);
      if (worker_error_.empty()) worker_error_ = e.what();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++completed_;
    }
    done_cv_.notify_all();
  }
}

void GradSync::run_ring(const Task& t, float* data) {
  const int R = size_, r = rank_;
  const std::int64_t L = buckets_[t.bucket].size(), c = L / R;
  if (c == 0) return;
  const int next = (r + 1) % R, prev = (r + R - 1) % R;
  const bool bf16 = o_.bf16 && t.job == Job::reduce;  // parameters always travel in f32
  const int tag = static_cast<int>(t.bucket % 100000) * 2;
  MPI_Comm comm = ring_comm_.get();
  auto chunk = [&](int k) { return data + static_cast<std::int64_t>(((k % R) + R) % R) * c; };
  std::vector<float> inbox(t.job == Job::reduce ? static_cast<std::size_t>(c) : 0);
  std::vector<std::uint16_t> out16(bf16 ? static_cast<std::size_t>(c) : 0), in16(out16.size());
  const int count = static_cast<int>(c);
  SK_CHECK(c <= 0x7fffffff, "grad sync: a chunk of ", c, " elements exceeds MPI's int count");
  // Sends `src` (c elements) to next and receives c elements from prev into `dst` (f32) or in16.
  auto exchange = [&](const float* src, float* dst, bool wire16, int phase) {
    MPI_Request req[2];
    if (wire16) {
      for (std::int64_t i = 0; i < c; ++i) out16[static_cast<std::size_t>(i)] = f32_to_bf16(src[i]);
      MPI_CHECK(MPI_Irecv(in16.data(), count, MPI_UINT16_T, prev, tag + phase, comm, &req[0]));
      MPI_CHECK(MPI_Isend(out16.data(), count, MPI_UINT16_T, next, tag + phase, comm, &req[1]));
    } else {
      MPI_CHECK(MPI_Irecv(dst, count, MPI_FLOAT, prev, tag + phase, comm, &req[0]));
      MPI_CHECK(MPI_Isend(src, count, MPI_FLOAT, next, tag + phase, comm, &req[1]));
    }
    wait_yielding(req, 2);
    bytes_sent_ += c * (wire16 ? 2 : 4);
  };
  if (t.job == Job::reduce) {
    for (int k = 0; k < R - 1; ++k) {  // reduce-scatter: chunk (r - 2 - k) gains prev's partial sum
      exchange(chunk(r - 1 - k), inbox.data(), bf16, 0);
      float* acc = chunk(r - 2 - k);
      if (bf16)
        for (std::int64_t i = 0; i < c; ++i) acc[i] += bf16_to_f32(in16[static_cast<std::size_t>(i)]);
      else
        for (std::int64_t i = 0; i < c; ++i) acc[i] += inbox[static_cast<std::size_t>(i)];
    }
    float* mine = chunk(r);  // complete: the sum over every rank
    const float inv = 1.0f / static_cast<float>(R);
    for (std::int64_t i = 0; i < c; ++i) mine[i] *= inv;
    if (bf16)
      for (std::int64_t i = 0; i < c; ++i) mine[i] = bf16_to_f32(f32_to_bf16(mine[i]));
    if (o_.zero) return;
  }
  for (int k = 0; k < R - 1; ++k) {  // all-gather: chunk (r - k) travels on to next
    if (bf16) {
      exchange(chunk(r - k), nullptr, true, 1);
      float* dst = chunk(r - k - 1);
      for (std::int64_t i = 0; i < c; ++i) dst[i] = bf16_to_f32(in16[static_cast<std::size_t>(i)]);
    } else {
      exchange(chunk(r - k), chunk(r - k - 1), false, 1);
    }
  }
}

void GradSync::wait_all() {
  const auto t0 = Clock::now();
  if (nccl_) {
    for (Handle& h : handles_) h.wait();
    handles_.clear();
  } else if (worker_.joinable()) {
    Watchdog::Scope watch("the gradient reduction (communication thread)");
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return completed_ == submitted_; });
    if (!worker_error_.empty()) {
      const std::string e = worker_error_;
      worker_error_.clear();
      throw Error(cat("gradient reduction failed: ", e));
    }
  }
  wait_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

void GradSync::finish() {
  for (std::size_t b = 0; b < buckets_.size(); ++b) start(b);
  wait_all();
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (!staged_[b].defined()) continue;
    Tensor view = flat_.slice0(buckets_[b].begin, buckets_[b].end);
    if (nccl_ && o_.zero) view = view.slice0(owned_[b].begin - buckets_[b].begin, owned_[b].end - buckets_[b].begin);
    if (staged_[b].dtype() == DType::bf16) view.copy_from(backend_of(view).cast(staged_[b], DType::f32));
    else view.copy_from(staged_[b]);
    staged_[b] = Tensor();
  }
}

void GradSync::gather(Tensor& values) {
  SK_CHECK(o_.zero, "grad sync: gather() is for ZeRO-1");
  SK_CHECK(values.numel() == flat_.numel(), "grad sync: the values buffer has ", values.numel(), " elements, the gradients ",
           flat_.numel());
  const auto t0 = Clock::now();
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const Range& r = buckets_[b];
    if (r.size() == 0) continue;
    const std::int64_t c = r.size() / size_;
    Tensor view = values.slice0(r.begin, r.end);
    if (nccl_) {
      Tensor mine = view.slice0(rank_ * c, (rank_ + 1) * c).clone();  // the owned chunk (an input outside the output)
      handles_.push_back(comm_.all_gather(mine, view));
      bytes_sent_ += (size_ - 1) * c * 4;
      continue;
    }
    Tensor host = view.device() == Device::cpu ? view : view.to(Device::cpu);
    run_ring({Job::gather, b}, host.data<float>());
    if (view.device() != Device::cpu) view.copy_from(host);
  }
  for (Handle& h : handles_) h.wait();
  handles_.clear();
  wait_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace sk::par
