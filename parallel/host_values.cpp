// host_values.cpp — exact transport of host doubles (see host_values.h).
#include "parallel/host_values.h"

#include <algorithm>
#include <limits>

namespace sk::par {
namespace {

std::vector<float> split(const std::vector<double>& v) {
  std::vector<float> f;
  f.reserve(v.size() * 3);
  for (double x : v) {
    const float hi = static_cast<float>(x);
    const float mid = static_cast<float>(x - static_cast<double>(hi));
    const float lo = static_cast<float>(x - static_cast<double>(hi) - static_cast<double>(mid));
    f.push_back(hi);
    f.push_back(mid);
    f.push_back(lo);
  }
  return f;
}

std::vector<double> join(const std::vector<float>& f) {
  std::vector<double> v(f.size() / 3);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<double>(f[3 * i]) + static_cast<double>(f[3 * i + 1]) + static_cast<double>(f[3 * i + 2]);
  return v;
}

}  // namespace

std::vector<double> gather_doubles(Communicator* comm, const std::vector<double>& local, Device dev) {
  if (!comm || comm->size() == 1 || local.empty()) return local;
  const std::vector<float> f = split(local);
  Tensor in = Tensor::from_vector(f, {static_cast<std::int64_t>(f.size())}, dev);
  Tensor out = Tensor::empty({static_cast<std::int64_t>(f.size()) * comm->size()}, DType::f32, dev);
  comm->all_gather(in, out).wait();
  return join(out.to_vector<float>());
}

std::vector<double> combine_disjoint(Communicator* comm, const std::vector<double>& local, Device dev) {
  if (!comm || comm->size() == 1 || local.empty()) return local;
  const std::vector<float> f = split(local);
  Tensor t = Tensor::from_vector(f, {static_cast<std::int64_t>(f.size())}, dev);
  comm->all_reduce(t, CollOp::sum).wait();
  return join(t.to_vector<float>());
}

std::vector<double> max_doubles(Communicator* comm, const std::vector<double>& local, Device dev) {
  if (!comm || comm->size() == 1 || local.empty()) return local;
  const std::vector<double> all = gather_doubles(comm, local, dev);
  std::vector<double> m(local.size(), -std::numeric_limits<double>::infinity());
  for (std::size_t r = 0; r * local.size() < all.size(); ++r)
    for (std::size_t i = 0; i < local.size(); ++i) m[i] = std::max(m[i], all[r * local.size() + i]);
  return m;
}

}  // namespace sk::par
