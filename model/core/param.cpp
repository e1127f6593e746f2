#include "param.h"

#include <cmath>

#include "backend.h"
#include "philox.h"

namespace sk {

const char* param_group_name(ParamGroup g) {
  switch (g) {
    case ParamGroup::default_group: return "default";
    case ParamGroup::pkm_values: return "pkm_values";
    case ParamGroup::no_decay: return "no_decay";
  }
  return "?";
}

Parameter* ParamSet::add(const std::string& name, const Shape& shape, Init init, ParamGroup group) {
  SK_CHECK(!finalized(), "ParamSet::add: '", name, "' added after finalize()");
  SK_CHECK(!by_name_.count(name), "ParamSet::add: duplicate parameter name '", name, "'");
  auto p = std::make_unique<Parameter>();
  p->names = {name};
  p->init_key = name;
  p->shape = shape;
  p->group = group;
  p->init = init;
  p->offset = total_;
  total_ += shape_numel(shape);
  Parameter* raw = p.get();
  by_name_[name] = raw;
  params_.push_back(std::move(p));
  return raw;
}

void ParamSet::alias(Parameter* p, const std::string& alias) {
  SK_CHECK(!by_name_.count(alias), "ParamSet::alias: duplicate parameter name '", alias, "'");
  p->names.push_back(alias);
  by_name_[alias] = p;
}

Buffer* ParamSet::add_buffer(const std::string& name, Tensor value) {
  for (auto& b : buffers_) SK_CHECK(b->name != name, "ParamSet::add_buffer: duplicate buffer '", name, "'");
  buffers_.push_back(std::make_unique<Buffer>(Buffer{name, std::move(value)}));
  return buffers_.back().get();
}

namespace {
// FNV-1a of the key: the Philox stream of a parameter's initial values.
std::uint64_t init_stream(const std::string& key) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : key) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return rng_mix(h ^ 0x494E4954ull);  // "INIT"
}
constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kInv2p32 = 1.0 / 4294967296.0;
}  // namespace

float init_value(const Init& init, std::uint64_t seed, const std::string& init_key, std::int64_t i) {
  switch (init.kind) {
    case Init::zeros: return 0.f;
    case Init::ones: return 1.f;
    case Init::constant: return init.a;
    case Init::normal:
    case Init::uniform: break;
  }
  const Philox4 r = philox_block(RngKey{seed, init_stream(init_key)}, static_cast<std::uint64_t>(i));
  if (init.kind == Init::uniform) {
    const double u = (static_cast<double>(r.v[0]) + 0.5) * kInv2p32;  // (0, 1)
    return static_cast<float>((2.0 * u - 1.0) * static_cast<double>(init.a));
  }
  const double u1 = (static_cast<double>(r.v[0]) + 1.0) * kInv2p32;  // (0, 1]
  const double u2 = static_cast<double>(r.v[1]) * kInv2p32;          // [0, 1)
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2) * static_cast<double>(init.a));
}

void ParamSet::finalize(Device device, std::uint64_t seed, std::int64_t pad_to) {
  SK_CHECK(!finalized(), "ParamSet::finalize called twice");
  SK_CHECK(pad_to >= 1, "ParamSet::finalize: pad_to must be >= 1, got ", pad_to);
  const std::int64_t padded = (total_ + pad_to - 1) / pad_to * pad_to;
  std::vector<float> host(static_cast<std::size_t>(padded), 0.f);
  for (auto& p : params_) {
    float* d = host.data() + p->offset;
    const std::int64_t n = shape_numel(p->shape);
    for (std::int64_t i = 0; i < n; ++i) d[i] = init_value(p->init, seed, p->init_key, i);
  }
  flat_values_ = Tensor::from_vector(host, {padded}, device);
  flat_grads_ = Tensor::zeros({padded}, DType::f32, device);
  for (auto& p : params_) {
    std::int64_t n = shape_numel(p->shape);
    p->value = flat_values_.slice0(p->offset, p->offset + n).reshape(p->shape);
    p->grad = flat_grads_.slice0(p->offset, p->offset + n).reshape(p->shape);
  }
  for (auto& b : buffers_) b->value = b->value.to(device);
}

Parameter* ParamSet::find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Buffer* ParamSet::find_buffer(const std::string& name) {
  for (auto& b : buffers_)
    if (b->name == name) return b.get();
  return nullptr;
}

void ParamSet::zero_grad() {
  if (flat_grads_.defined()) backend_of(flat_grads_).fill(flat_grads_, 0.f);
}

}  // namespace sk
