#include "param.h"

#include <cmath>
#include <random>

#include "backend.h"

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

void ParamSet::finalize(Device device, std::uint64_t seed) {
  SK_CHECK(!finalized(), "ParamSet::finalize called twice");
  std::vector<float> host(static_cast<std::size_t>(total_));
  std::mt19937_64 rng(seed);
  for (auto& p : params_) {
    float* d = host.data() + p->offset;
    std::int64_t n = shape_numel(p->shape);
    switch (p->init.kind) {
      case Init::zeros: std::fill(d, d + n, 0.f); break;
      case Init::ones: std::fill(d, d + n, 1.f); break;
      case Init::constant: std::fill(d, d + n, p->init.a); break;
      case Init::normal: {
        std::normal_distribution<float> nd(0.f, p->init.a);
        for (std::int64_t i = 0; i < n; ++i) d[i] = nd(rng);
        break;
      }
      case Init::uniform: {
        std::uniform_real_distribution<float> ud(-p->init.a, p->init.a);
        for (std::int64_t i = 0; i < n; ++i) d[i] = ud(rng);
        break;
      }
    }
  }
  flat_values_ = Tensor::from_vector(host, {total_}, device);
  flat_grads_ = Tensor::zeros({total_}, DType::f32, device);
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
