// tokenizer.h — SentencePiece models (Debian libsentencepiece): train, encode, decode.
// The sentencepiece headers stay inside tokenizer.cpp (tests/check_includes.sh enforces it);
// callers see plain strings and int64 ids.
//
//   Tokenizer tok("tok.model");
//   std::vector<std::int64_t> ids = tok.encode("ROMEO:\n");
//   std::string text = tok.decode(ids);
//
// Models trained by train_tokenizer are lossless on any UTF-8 or binary text: identity
// normalisation, whitespace kept as is, no dummy prefix, byte fallback (every byte not covered by
// a piece becomes one of 256 byte pieces), so decode(encode(t)) == t and encoding text in blocks
// cut after a newline gives exactly the ids of encoding it whole (what `sinkhorn tokenize encode`
// does). Foreign SentencePiece models load too; their own normalisation then applies.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace sk::data {

class CorpusView;

class Tokenizer {
 public:
  // Loads a SentencePiece model file; throws DataError naming the file.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  const std::string& path() const { return path_; }
  std::int64_t vocab_size() const;  // ids are 0 … vocab_size - 1
  std::int64_t eos_id() const;      // "</s>", or -1 when the model has none
  bool is_byte(std::int64_t id) const;

  std::vector<std::int64_t> encode(std::string_view text) const;
  // encode(text) computed in pieces of ~4 KiB cut after a newline, on `threads` threads (0: one
  // per core): the same ids for models of train_tokenizer, and much faster on large texts
  // (SentencePiece's cost grows faster than linearly with the length of one input: 0.6 MB/s in
  // 1 MiB pieces, 2.3 MB/s in 4 KiB pieces per core on the shipped text).
  std::vector<std::int64_t> encode_blocks(std::string_view text, int threads = 0) const;
  // Throws DataError for an id outside [0, vocab_size).
  std::string decode(const std::vector<std::int64_t>& ids) const;
  // UTF-8 bytes that each id stands for inside a text (byte pieces 1, control pieces 0, a piece
  // with "▁" counts a space for it): the sum over ids is the decoded size (exactly, for models of
  // train_tokenizer).
  const std::vector<std::int64_t>& piece_bytes() const { return piece_bytes_; }
  // Mean text bytes per token of a view (bits-per-byte of a validation split, data/validation.h).
  double bytes_per_token(const CorpusView& view) const;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::int64_t> piece_bytes_;
};

struct TokenizerTrainSpec {
  std::vector<std::string> inputs;  // text files (one training sentence per line)
  std::int64_t vocab_size = 0;      // pieces in the model, incl. <unk>, <s>, </s> and 256 byte pieces
  std::string model_type = "bpe";   // "bpe" | "unigram" | "char" | "word"
  double character_coverage = 1.0;  // fraction of characters covered by pieces (the rest: byte fallback)
  std::int64_t max_sentences = 0;   // train on at most this many lines, sampled (0 = all)
  std::uint32_t seed = 0;           // SentencePiece's sampling seed
  int threads = 2;
  std::string out;                  // the model file to write (atomically)
};
// Trains a model and writes it to spec.out. Throws DataError with SentencePiece's message.
void train_tokenizer(const TokenizerTrainSpec& spec);

}  // namespace sk::data
