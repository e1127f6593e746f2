// reference_check.h — runs one PyTorch reference test case folder (shared/reference/README.md):
// builds the model(s) from config.toml, loads weights.safetensors and batch.safetensors, runs the
// case (kind lm / embeddings / encoder_decoder; autopad none / left / right; loss cross_entropy /
// mse_probe) in eval or train mode, back-propagates the loss, and writes a safetensors file with
// the same names as expected*.safetensors: "logits" or "embeddings", "loss", "grad.<name>" for every
// parameter name (each alias of a tied parameter carrying the total), and in train mode
// "buffer.<name>" (BatchNorm statistics after the one training forward).
// Used by `sinkhorn reference-check CASE_DIR --dump OUT [--mode eval|train] [--precision fp32|bf16]`.
#pragma once
#include <string>

#include "model/core/dtype.h"
#include "model/layers/layer.h"

namespace sk {

// Returns 0 on success; throws sk::Error on bad input (missing files, bad config, shape mismatch).
int reference_check_main(const std::string& case_dir, const std::string& dump_path, const std::string& mode);
// Same on an explicit device (its backend must be registered).
int reference_check_main(const std::string& case_dir, const std::string& dump_path, const std::string& mode,
                         Device device);
// Same with the Linear GEMMs in `precision` (Context::gemm_precision; `--precision fp32|bf16`).
int reference_check_main(const std::string& case_dir, const std::string& dump_path, const std::string& mode,
                         Device device, Precision precision);

}  // namespace sk
