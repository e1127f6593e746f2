// safetensors.h — safetensors files (https://github.com/huggingface/safetensors) and loading /
// saving a model's ParamSet by reference state_dict names.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
// "data_offsets": [begin, end]}, optional "__metadata__": {str: str}} padded with spaces so that
// 8 + N is a multiple of 8, then the data region (offsets relative to it). Dtypes: F32, BF16, I64,
// I32, U8 (the Tensor dtypes). Writing is atomic: a temporary file in the same folder, fsync,
// rename over the target, fsync of the folder. Tensors are written in name order.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/core/param.h"
#include "model/core/tensor.h"

namespace sk {

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

// One tensor of a safetensors header; [begin, end) is relative to the data region.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;  // as read (F16 / F64 tensors are read as F32)
  Shape shape;
  std::uint64_t begin = 0, end = 0;
  std::string stored;        // "F16" / "F64" when converted on reading, else ""
};
// Parses and validates the JSON header of a file whose data region has `data_size` bytes; `what`
// names the file in messages. Rules (as the safetensors format, and its reference reader, state):
// the header is one JSON object without repeated keys; "__metadata__", if present, maps strings to
// strings; every other key is a tensor {"dtype": F32|BF16|I64|I32|U8|F16|F64, "shape": [non-negative
// integers], "data_offsets": [begin, end]} whose element count and byte size do not overflow 64
// bits and whose byte range holds exactly shape × dtype bytes; the byte ranges do not overlap and
// together cover the data region with no gap. Throws one-line sk::Error naming the tensor.
std::vector<SafetensorsEntry> parse_safetensors_header(std::string_view header, std::uint64_t data_size,
                                                       const std::string& what, Metadata* metadata = nullptr);
// A whole safetensors file already in memory (fuzzing, tests): the same checks as read_safetensors.
TensorMap parse_safetensors(std::string_view bytes, const std::string& what, Metadata* metadata = nullptr);

// Reads every tensor into host (cpu) memory. Throws sk::Error naming the file (and the tensor) on
// any malformed header (see parse_safetensors_header), unsupported dtype, bad offsets or truncated
// data. A torch.save file (a zip archive, or a pickle) is "not a safetensors file", with how to
// export one. F16 and F64 tensors (no Tensor dtype of ours) are converted to F32 on reading; each
// conversion is added to `conversions` ("tensor 'x': F16 -> F32") when given.
TensorMap read_safetensors(const std::string& path, Metadata* metadata = nullptr,
                           std::vector<std::string>* conversions = nullptr);
// Writes tensors (any device; copied to the host) atomically.
void write_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});

struct LoadOptions {
  bool require_all = true;        // every parameter and buffer must be found (under any of its names)
  bool allow_unexpected = false;  // file tensors that name nothing in the ParamSet are an error unless set
};
struct LoadReport {
  std::vector<std::string> loaded;      // primary names of parameters / buffers set
  std::vector<std::string> missing;     // not found (only when !require_all)
  std::vector<std::string> unexpected;  // file names matching nothing (only when allow_unexpected)
};
// Sets every parameter (found under its primary name or any alias of a tied parameter) and every
// buffer from `tensors`. A shape mismatch, a wrong dtype (parameters: F32 or BF16; buffers: their
// own dtype), or (per options) a missing / unexpected tensor throws sk::Error naming the tensor.
// A tied parameter present under several of its names must hold the same values under each
// (bitwise, after BF16 -> F32): otherwise the file is not of this model (e.g. an untied checkpoint
// loaded with weight_tie = true) and the error names both tensors.
LoadReport load_params(ParamSet& ps, const TensorMap& tensors, const LoadOptions& opt = {});
LoadReport load_params_file(ParamSet& ps, const std::string& path, const LoadOptions& opt = {});

// Every parameter value by name — with aliases, a tied tensor appears once per name, as in the
// reference state_dict — plus the buffers. Tensors are views (no copy).
TensorMap params_by_name(ParamSet& ps, bool with_aliases = true, bool with_buffers = true);
// Gradients by name, under `prefix` + name (e.g. "grad."); aliases carry the total gradient.
TensorMap grads_by_name(ParamSet& ps, const std::string& prefix, bool with_aliases = true);
void save_params_file(const std::string& path, ParamSet& ps, bool with_aliases = true, const Metadata& metadata = {});

}  // namespace sk
