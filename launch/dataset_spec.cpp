// dataset_spec.cpp — see dataset_spec.h.
#include "launch/dataset_spec.h"

#include "data/data_error.h"
#include "model/core/error.h"

namespace sk {

data::DatasetSpec dataset_spec(const RunConfig& cfg) {
  data::DatasetSpec s;
  s.format = cfg.data.format;
  s.paths = cfg.data.paths;
  if (s.paths.empty() && !cfg.data.path.empty()) s.paths = {cfg.data.path};
  s.val_paths = cfg.data.val_paths;
  s.val_fraction = cfg.data.val_fraction;
  s.vocab_size = cfg.model.num_tokens;
  s.seq_len = cfg.train.seq_len;
  return s;
}

std::optional<data::Tokenizer> open_run_tokenizer(const RunConfig& cfg) {
  const std::string& path = cfg.data.tokenizer;
  if (path.empty()) return std::nullopt;
  const std::string where = cat(cfg.path, " [data]: tokenizer = \"", path, "\": ");
  std::optional<data::Tokenizer> tok;
  try {
    tok.emplace(path);
  } catch (const data::DataError& e) {
    throw Error(where + e.what());
  }
  SK_CHECK(tok->vocab_size() <= cfg.model.num_tokens, where, "its vocabulary has ", tok->vocab_size(),
           " pieces, more than model.num_tokens = ", cfg.model.num_tokens,
           " (num_tokens must be >= the tokenizer's vocabulary)");
  return tok;
}

}  // namespace sk
