#include "tensor.h"

#include <cstring>
#include <sstream>

#include "backend.h"

namespace sk {

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

Storage::Storage(std::size_t n, Device d) : bytes(n), device(d) {
  data = backend_for(d).allocate(n == 0 ? 1 : n);
}

Storage::~Storage() {
  if (data) backend_for(device).deallocate(data, bytes == 0 ? 1 : bytes);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape) SK_CHECK(d >= 0, "Tensor::empty: negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend_for(device).fill(t, 0.f);
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, DType::f32, device);
  backend_for(device).fill(t, value);
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& v, const Shape& shape, Device device) {
  SK_CHECK(static_cast<std::int64_t>(v.size()) == shape_numel(shape), "Tensor::from_vector: ", v.size(),
           " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>(), device);
  backend_for(device).copy_bytes(t.raw(), device, v.data(), Device::cpu, v.size() * sizeof(T));
  return t;
}

std::int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  SK_CHECK(j >= 0 && j < n, "Tensor::dim: axis ", i, " out of range for ", str());
  return shape_[static_cast<std::size_t>(j)];
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SK_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SK_CHECK(known > 0 && numel() % known == 0, "reshape: cannot view ", str(), " as ", shape_str(shape));
    s[static_cast<std::size_t>(infer)] = numel() / known;
  }
  SK_CHECK(shape_numel(s) == numel(), "reshape: cannot view ", str(), " as ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice0(std::int64_t begin, std::int64_t end) const {
  SK_CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "slice0: rows [", begin, ", ", end,
           ") out of range for ", str());
  Tensor t = *this;
  std::int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  t.offset_ += static_cast<std::size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::select0(std::int64_t i) const {
  Tensor t = slice0(i, i + 1);
  t.shape_.erase(t.shape_.begin());
  return t;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor t = empty(shape_, dtype_, d);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  SK_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: ", src.str(), " into ", str());
  Device via = (device() == Device::cuda || src.device() == Device::cuda) ? Device::cuda : Device::cpu;
  backend_for(via).copy_bytes(raw(), device(), src.raw(), src.device(), nbytes());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  check_dtype(dtype_of<T>());
  std::vector<T> v(static_cast<std::size_t>(numel()));
  if (!v.empty()) {
    Device via = device();
    backend_for(via).copy_bytes(v.data(), Device::cpu, raw(), device(), nbytes());
  }
  return v;
}

float Tensor::item() const {
  SK_CHECK(numel() == 1, "item: expected one element, got ", str());
  if (dtype_ == DType::f32) return to_vector<float>()[0];
  return backend_for(device()).cast(*this, DType::f32).to_vector<float>()[0];
}

std::string Tensor::str() const {
  std::ostringstream os;
  os << dtype_name(dtype_) << shape_str(shape_) << "@" << device_name(device());
  return os.str();
}

void Tensor::check_dtype(DType want) const {
  SK_CHECK(defined(), "tensor is undefined (expected ", dtype_name(want), ")");
  SK_CHECK(dtype_ == want, "tensor dtype mismatch: expected ", dtype_name(want), ", got ", str());
}

template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<std::int32_t>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<std::int64_t>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<std::uint8_t>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<std::uint16_t>&, const Shape&, Device);
template std::vector<float> Tensor::to_vector() const;
template std::vector<std::int32_t> Tensor::to_vector() const;
template std::vector<std::int64_t> Tensor::to_vector() const;
template std::vector<std::uint8_t> Tensor::to_vector() const;
template std::vector<std::uint16_t> Tensor::to_vector() const;

}  // namespace sk
