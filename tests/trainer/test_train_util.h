// Shared helpers of the training tests: a tiny causal model on tinyshakespeare bytes.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "model/core/tensor.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/trainer.h"

namespace sk::test {

inline std::string shakespeare_path() { return std::string(SK_SOURCE_DIR) + "/launch/configs/data/tinyshakespeare.txt"; }

// A fresh, empty folder under the system temp dir.
inline std::string fresh_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("sk_train_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

inline TrainSpec tiny_spec() {
  TrainSpec s;
  s.name = "tiny";
  s.model.num_tokens = 256;
  s.model.dim = 32;
  s.model.max_seq_len = 32;
  s.model.depth = 1;
  s.model.heads = 2;
  s.model.bucket_size = 8;
  s.model.causal = true;
  s.model.reversible = true;
  s.model.n_local_attn_heads = 1;
  s.batch_size = 4;
  s.seq_len = 32;
  s.steps = 8;
  s.grad_accum = 1;
  s.grad_clip = 1.0;
  s.optim.lr = 3e-3;
  s.schedule.lr = 3e-3;
  s.schedule.min_lr = 3e-4;
  s.schedule.warmup_steps = 2;
  s.schedule.decay_steps = 8;
  s.seed = 7;
  s.data_path = shakespeare_path();
  s.val_fraction = 0.05;
  s.log_interval = 1000;
  s.console = false;
  return s;
}

// Max |a - b| over every tensor of two safetensors files (same names and shapes required).
inline double max_abs_diff(const std::string& a, const std::string& b) {
  TensorMap ta = read_safetensors(a), tb = read_safetensors(b);
  if (ta.size() != tb.size()) return 1e30;
  double m = 0;
  for (auto& [k, t] : ta) {
    auto it = tb.find(k);
    if (it == tb.end() || it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) return 1e30;
    if (t.dtype() != DType::f32) continue;
    auto va = t.to_vector<float>(), vb = it->second.to_vector<float>();
    for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, static_cast<double>(std::abs(va[i] - vb[i])));
  }
  return m;
}

}  // namespace sk::test
