// dataset_spec.h — [data] of a RunConfig as the data/ layer takes it: the dataset to open and the
// tokenizer, with the rules that need the files (num_tokens >= the tokenizer's vocabulary).
//
//   data::Dataset ds(dataset_spec(cfg));                  // opens and checks every shard
//   std::optional<data::Tokenizer> tok = open_run_tokenizer(cfg);
#pragma once
#include <optional>

#include "data/token_corpus.h"
#include "data/tokenizer.h"
#include "launch/config.h"

namespace sk {

// format, paths (files / globs, already resolved), val_paths, val_fraction, vocab_size =
// model.num_tokens, seq_len = train.seq_len (every token shard must hold one window).
data::DatasetSpec dataset_spec(const RunConfig& cfg);

// The SentencePiece model of data.tokenizer (nullopt when ""). Throws a one-line sk::Error naming
// the config file and key when it cannot be loaded or its vocabulary exceeds model.num_tokens.
std::optional<data::Tokenizer> open_run_tokenizer(const RunConfig& cfg);

}  // namespace sk
