// tensor.h — Tensor: shape, dtype, device, contiguous shared storage, cheap views.
// No math here (that is Backend's job). Views are free only where they are free: reshape and
// slicing the leading dimension share storage; everything else copies through a Backend op.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "error.h"

namespace sk {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// Raw device memory owned jointly by every tensor viewing it; freed through the device's backend
// (the CUDA one returns blocks to its caching allocator).
struct Storage {
  void* data = nullptr;
  std::size_t bytes = 0;
  Device device = Device::cpu;
  Storage(std::size_t n, Device d);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::bf16; }  // raw bf16 bits

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (e.g. "no mask")

  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu);
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu);  // f32
  template <class T>
  static Tensor from_vector(const std::vector<T>& v, const Shape& shape, Device device = Device::cpu);
  static Tensor scalar(float v, Device device = Device::cpu) { return full({1}, v, device); }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  std::int64_t dim(int i) const;  // negative counts from the end
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu; }

  void* raw() { return static_cast<char*>(storage_->data) + offset_; }
  const void* raw() const { return static_cast<const char*>(storage_->data) + offset_; }
  template <class T> T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(raw());
  }
  template <class T> const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(raw());
  }

  // Views (share storage).
  Tensor reshape(const Shape& shape) const;           // one entry may be -1
  Tensor slice0(std::int64_t begin, std::int64_t end) const;  // rows [begin, end) of dim 0
  Tensor select0(std::int64_t i) const;                // row i of dim 0, that dim dropped
  bool shares_storage(const Tensor& o) const { return storage_ && storage_ == o.storage_; }

  // Copies.
  Tensor to(Device d) const;   // same device: returns *this (no copy)
  Tensor clone() const;        // deep copy on the same device
  void copy_from(const Tensor& src);  // same shape & dtype, any devices
  template <class T> std::vector<T> to_vector() const;  // host copy (any device)
  float item() const;          // single f32 element

  std::string str() const;  // "f32[2, 3]@cpu"

 private:
  void check_dtype(DType want) const;
  std::shared_ptr<Storage> storage_;
  std::size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
};

}  // namespace sk
