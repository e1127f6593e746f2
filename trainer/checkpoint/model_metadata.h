// model_metadata.h — the resolved [model] table in a model.safetensors file's __metadata__, and
// loading weights people bring from elsewhere.
//
// Metadata entries (strings, as safetensors requires): "sinkhorn.format" = "1" and one
// "model.<key>" per [model] key with its RESOLVED value (optional keys as what they resolve to:
// dim_head = dim / heads, kv_bucket_size / context_bucket_size = bucket_size, emb_dim = dim):
// integers in decimal, booleans true/false, floats in shortest round-trip form, lists "[1, 2]".
// So a file alone rebuilds its model (`sinkhorn sample --weights F` without a config), and a
// config that differs is named key by key.
//
// Foreign files (load_model_weights below): a torch.save file is "not a safetensors file"
// (read_safetensors); F16/F64 tensors are converted to F32 and BF16 parameters to f32, each
// reported; the reference AutoregressiveWrapper's state_dict keys ("net.net." + the LM's key:
// wrapper.net is an Autopadder whose .net is the LM) are accepted by stripping the prefix, reported.
#pragma once
#include <string>
#include <vector>

#include "model/core/param.h"
#include "model/lm/config.h"
#include "trainer/checkpoint/safetensors.h"

namespace sk {

Metadata model_metadata(const LMConfig& model);
bool has_model_metadata(const Metadata& meta);
// The LMConfig the metadata describes; throws sk::Error naming `file` and the key when an entry is
// missing or malformed, or when there is no model metadata at all.
LMConfig model_from_metadata(const Metadata& meta, const std::string& file);
// No-op when `meta` holds no model metadata (e.g. a PyTorch export). Otherwise throws one line
// naming `file` and the first key whose resolved value differs:
//   "<file>: [model] n_top_buckets = 2 in the config, 3 in the weights' metadata".
void check_model_metadata(const Metadata& meta, const LMConfig& model, const std::string& file);

struct WeightsFile {
  std::string file;                // the model.safetensors read (resolve_model_weights)
  TensorMap tensors;               // names without a stripped wrapper prefix
  Metadata metadata;
  std::vector<std::string> notes;  // one line each: conversions, the prefix stripped
};
// resolve_model_weights(path), then the file's tensors and metadata, foreign forms handled as above.
WeightsFile read_model_weights(const std::string& path);

// Reads `path` (read_model_weights), checks its metadata against `model` (check_model_metadata),
// then loads every parameter and buffer by reference name (each present with its shape, none left
// over). Notes (conversions, prefix) go to `notes` when given. Returns the file read.
std::string load_model_weights(const std::string& path, ParamSet& ps, const LMConfig& model,
                               std::vector<std::string>* notes = nullptr);

}  // namespace sk
