// token_corpus.h — token corpora for training: one text file read as bytes, or pre-tokenized
// shards (llm.c .bin, raw uint16 .bin, .npy), memory-mapped, checked when opened, split into
// train and validation views, and fingerprinted so that a resumed run can tell the data changed.
//
//   DatasetSpec spec;                      // from [data] (launch/dataset_spec.h)
//   spec.format = "tokens";
//   spec.paths = {"shards/train-*.bin"};   // files or globs, in order
//   spec.vocab_size = 8000;                // model.num_tokens: every id must be below it
//   spec.seq_len = 1024;                   // every shard must hold one window of seq_len + 1
//   Dataset ds(spec);
//   Sampler sampler(ds.train().segments(), sampler_cfg);          // data/sampler.h
//   TokenBatch b = assemble_batch(ds.train(), sampler.next(), T);  // data/batch.h
//
// Shard formats, told apart by content (never by the file name):
//   llm.c    256 little-endian int32 header: [0] magic, [1] version, [2] token count, then the
//            tokens. magic 20240520 with version 1: uint16 tokens (GPT-2, dev/data/data_common.py);
//            magic 20240801 with version 7: uint32 tokens (LLaMA-3). The file is exactly
//            1024 + count * width bytes.
//   npy      NumPy .npy v1/v2/v3 ("\x93NUMPY"), a 1-D array of '<u2', '<u4' or '<i4' (or '|u1').
//   raw_u16  anything else: little-endian uint16 tokens, no header (nanoGPT's train.bin); the
//            size must be even. A file whose first 1024 bytes look like an llm.c header with an
//            unknown magic (token count matching the file size) is an error, not raw tokens.
//   bytes    format = "bytes": one file, one token per byte (vocabulary 256).
//
// Windows never cross a shard boundary (nor the train/validation cut): a shard is one file of
// its own (llm.c's loader reads every batch from one shard the same way), so a window is one
// contiguous run of one mapping, and a window spanning two independently prepared files would
// join unrelated text. The cost is at most seq_len tokens per shard that never start a window
// (they are still targets of earlier windows), negligible for shards of millions of tokens; in
// return every shard must hold one window (seq_len + 1 tokens), checked when it is opened.
//
// Checks when a shard is opened (one-line DataError naming the file, and the byte offset where it
// applies): unknown magic / wrong version, truncated or odd-sized data, a token id >= vocab_size
// (or < 0 in an int32 .npy), fewer than seq_len + 1 tokens, a glob matching nothing. The id check
// is one sequential pass over every shard's tokens (a vectorised max reduction; the first bad
// offset is searched only when the maximum is too large): it reads each file once, at memory or
// disk bandwidth — tests/bench/data_bench.cpp measures it (GB/s).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/byte_dataset.h"

namespace sk::data {

enum class TokenDType : std::uint8_t { u8, u16, u32, i32 };
const char* token_dtype_name(TokenDType d);  // "uint8", "uint16", "uint32", "int32"
int token_dtype_size(TokenDType d);

enum class ShardFormat : std::uint8_t { bytes, llmc, raw_u16, npy };
const char* shard_format_name(ShardFormat f);  // "bytes", "llm.c", "raw_u16", "npy"

// One shard as opened.
struct ShardInfo {
  std::string path;
  ShardFormat format = ShardFormat::bytes;
  TokenDType dtype = TokenDType::u8;
  std::int64_t tokens = 0;
  std::int64_t data_offset = 0;  // byte offset of token 0 in the file
  std::int64_t file_bytes = 0;
  std::int64_t max_token = -1;   // largest id seen (-1: not scanned / empty)
};

// Plain data for trainer.json (trainer/data_record.h converts it to and from JSON).
struct ShardFingerprint {
  std::string role;    // "train" (data.path) or "val" (data.val_path)
  std::string path;
  std::string format;  // shard_format_name
  std::string dtype;   // token_dtype_name
  std::int64_t tokens = 0;
  std::int64_t file_bytes = 0;
  std::uint32_t crc_head = 0;  // zlib CRC-32 of the file's first min(1 MiB, size) bytes
  std::uint32_t crc_tail = 0;  // ... and of its last min(1 MiB, size) bytes
};
struct DataFingerprint {
  std::string format;         // "bytes" | "tokens"
  double val_fraction = 0.0;  // the split, when there are no "val" shards
  std::vector<ShardFingerprint> shards;
};
// Throws DataError with one line naming the first shard that differs (count, path order, size,
// tokens, content) between a checkpoint's record and the data opened now. Paths may differ
// (data moved) as long as everything else matches.
void check_same_data(const DataFingerprint& saved, const DataFingerprint& current);

// What opening checks (0 = not checked).
struct ShardChecks {
  std::int64_t vocab_size = 0;  // every id must be < vocab_size
  std::int64_t min_tokens = 0;  // every shard must hold at least this many tokens (seq_len + 1)
  std::string vocab_name = "model.num_tokens";  // what vocab_size is, for messages
};

// Expands files and globs (POSIX glob, sorted) in order. A pattern (with * ? or [) that matches
// nothing is a DataError naming it; a plain path is kept as is (opening reports a missing file).
std::vector<std::string> expand_paths(const std::vector<std::string>& paths_or_globs, const std::string& what);

// Writes tokens as an llm.c shard (atomically: a temporary file, then rename): uint16 (magic
// 20240520, version 1) when every id < 65536 fits, else uint32 (magic 20240801, version 7).
// Returns the dtype written. Throws DataError for a negative id, ids >= 2^32 or > 2^31 - 1 tokens.
TokenDType write_llmc_shard(const std::string& path, const std::int64_t* tokens, std::int64_t n,
                            std::int64_t vocab_size);

// The concatenation of shards, in order.
class TokenCorpus {
 public:
  TokenCorpus() = default;
  static TokenCorpus open_bytes(const std::string& path);
  static TokenCorpus open_shards(const std::vector<std::string>& files, const ShardChecks& checks);

  std::int64_t size() const { return total_; }
  const std::vector<ShardInfo>& shards() const { return info_; }
  std::vector<std::int64_t> shard_sizes() const;
  std::int64_t shard_begin(std::size_t k) const { return begin_[k]; }
  // Tokens [offset, offset + n) of the concatenation (may span shards) as int64.
  void read(std::int64_t offset, std::int64_t n, std::int64_t* out) const;
  std::vector<ShardFingerprint> fingerprint(const std::string& role) const;
  // The raw bytes of a bytes corpus (one u8 shard); throws otherwise.
  TokenSpan bytes() const;
  bool is_bytes() const { return info_.size() == 1 && info_[0].format == ShardFormat::bytes; }

 private:
  std::vector<ShardInfo> info_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<std::int64_t> begin_;  // first token of each shard in the concatenation
  std::int64_t total_ = 0;
};

// Tokens [begin, end) of a corpus, cut at its shard boundaries into segments: no window may cross
// one (Sampler(view.segments(), cfg) draws only windows inside a segment).
class CorpusView {
 public:
  CorpusView() = default;
  CorpusView(std::shared_ptr<const TokenCorpus> corpus, std::int64_t begin, std::int64_t end);
  std::int64_t size() const { return end_ - begin_; }
  const std::vector<std::int64_t>& segments() const { return segments_; }  // sizes, in order
  // Tokens [offset, offset + n) of the view; throws DataError when they run outside the view or
  // across a segment boundary.
  void read(std::int64_t offset, std::int64_t n, std::int64_t* out) const;
  // The first min(n, size) tokens (e.g. a sample prompt), from the first segment on.
  std::vector<std::int64_t> head(std::int64_t n) const;
  // A bytes corpus's view as today's TokenSpan (ByteDataset::train()/val()); throws otherwise.
  TokenSpan bytes() const;
  const TokenCorpus& corpus() const { return *corpus_; }

 private:
  std::shared_ptr<const TokenCorpus> corpus_;
  std::int64_t begin_ = 0, end_ = 0;
  std::vector<std::int64_t> segments_;
  std::vector<std::int64_t> seg_begin_;  // view offsets where segments start
  std::vector<std::size_t> seg_shard_;   // the corpus shard of each segment
};

// [data] as the dataset needs it (launch/dataset_spec.h fills it from RunConfig).
struct DatasetSpec {
  std::string format = "bytes";         // "bytes" | "tokens"
  std::vector<std::string> paths;       // bytes: exactly one file; tokens: files or globs
  std::vector<std::string> val_paths;   // tokens only; empty: the last val_fraction of `paths`
  double val_fraction = 0.05;           // in [0, 1); ignored when val_paths is set
  std::int64_t vocab_size = 0;          // model.num_tokens (0: unchecked)
  std::int64_t seq_len = 0;             // every token shard must hold seq_len + 1 tokens (0: unchecked)
};

class Dataset {
 public:
  // Opens (and checks) everything; throws DataError before anything else happens.
  explicit Dataset(const DatasetSpec& spec);
  const CorpusView& train() const { return train_; }
  const CorpusView& val() const { return val_; }
  DataFingerprint fingerprint() const;
  const DatasetSpec& spec() const { return spec_; }
  bool is_bytes() const { return spec_.format == "bytes"; }

 private:
  DatasetSpec spec_;
  std::shared_ptr<TokenCorpus> corpus_, val_corpus_;
  CorpusView train_, val_;
};

}  // namespace sk::data
