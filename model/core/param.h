// param.h — Parameter and ParamSet.
// A Parameter is a named tensor with a gradient and an optimizer group. Names are the reference's
// state_dict keys; a tied (shared) parameter is ONE Parameter with several names (aliases).
// ParamSet owns every parameter of a model in registration order and, after finalize(), keeps all
// values in one flat f32 buffer and all gradients in another (each parameter's value/grad is a
// view into them), which is what the optimizer and gradient all-reduce work on.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor.h"

namespace sk {

enum class ParamGroup : std::uint8_t { default_group, pkm_values, no_decay };
const char* param_group_name(ParamGroup g);

// How a parameter is initialised when training from scratch (model-spec §17).
struct Init {
  enum Kind : std::uint8_t { zeros, ones, constant, normal, uniform } kind = zeros;
  float a = 0.f;  // constant value / normal std / uniform bound (values in [-a, a])
  static Init Zeros() { return {zeros, 0.f}; }
  static Init Ones() { return {ones, 1.f}; }
  static Init Const(float v) { return {constant, v}; }
  static Init Normal(float std) { return {normal, std}; }
  static Init Uniform(float bound) { return {uniform, bound}; }
};

struct Parameter {
  std::vector<std::string> names;  // names[0] is the primary name; the rest are tied aliases
  Shape shape;
  ParamGroup group = ParamGroup::default_group;
  Init init;
  // The name that keys the parameter's initial values (finalize): its name in the whole model —
  // names[0], except in a pipeline stage holding a replica of a weight-tied module whose first use
  // is on another stage (then the name of that first use). Also the parameter's layout-independent
  // identity (optimizer state is saved under it).
  std::string init_key;
  bool tied = false;  // belongs to a module shared across depth (weight_tie): replicas may live on several stages
  Tensor value;  // view into ParamSet::flat_values() after finalize()
  Tensor grad;   // view into ParamSet::flat_grads() after finalize()
  std::int64_t offset = 0;  // element offset in the flat buffers
  const std::string& name() const { return names.front(); }
};

// Non-trainable state saved with the model (BatchNorm running statistics).
struct Buffer {
  std::string name;
  Tensor value;  // f32 or i64
};

// Element i of a parameter keyed `init_key` initialised by `init` from `seed`: normal values by the
// Box–Muller transform of two Philox words, uniform ones from one (double arithmetic, rounded to f32).
float init_value(const Init& init, std::uint64_t seed, const std::string& init_key, std::int64_t i);

class ParamSet {
 public:
  // Registers a new parameter. Names must be unique across parameters and aliases.
  Parameter* add(const std::string& name, const Shape& shape, Init init,
                 ParamGroup group = ParamGroup::default_group);
  // Registers `alias` as another name of an existing parameter (weight tying).
  void alias(Parameter* p, const std::string& alias);
  Buffer* add_buffer(const std::string& name, Tensor value);

  // Allocates the flat buffers on `device` and initialises every value from (seed, init_key) alone
  // (Philox; init_value below), so any subset of a model — a pipeline stage — gets exactly the
  // values the whole model has, whatever the registration order. Grads start at zero.
  // `pad_to`: the flat buffers get numel() rounded up to a multiple of it, zero past the
  // parameters (ZeRO-1 and bucketed reductions cut them into equal chunks).
  void finalize(Device device, std::uint64_t seed, std::int64_t pad_to = 1);
  bool finalized() const { return flat_values_.defined(); }

  Parameter* find(const std::string& name);  // by any name; nullptr if none
  Buffer* find_buffer(const std::string& name);
  const std::vector<std::unique_ptr<Parameter>>& params() const { return params_; }
  std::vector<std::unique_ptr<Buffer>>& buffers() { return buffers_; }
  std::int64_t numel() const { return total_; }
  std::int64_t padded_numel() const { return flat_values_.defined() ? flat_values_.numel() : total_; }

  Tensor& flat_values() { return flat_values_; }
  Tensor& flat_grads() { return flat_grads_; }
  void zero_grad();
  Device device() const { return flat_values_.device(); }

 private:
  std::vector<std::unique_ptr<Parameter>> params_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::unordered_map<std::string, Parameter*> by_name_;
  std::int64_t total_ = 0;
  Tensor flat_values_, flat_grads_;
};

}  // namespace sk
