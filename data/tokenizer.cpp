// tokenizer.cpp — the only translation unit that includes the sentencepiece headers.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "data/data_error.h"
#include "data/token_corpus.h"

namespace sk::data {

Tokenizer::Tokenizer(const std::string& model_path)
    : path_(model_path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (!std::filesystem::is_regular_file(model_path))
    throw DataError("tokenizer '" + model_path + "': no such file (a SentencePiece .model, e.g. from sinkhorn tokenize train)");
  const auto st = sp_->Load(model_path);
  if (!st.ok()) throw DataError("tokenizer '" + model_path + "': not a SentencePiece model: " + st.ToString());
  const int n = sp_->GetPieceSize();
  piece_bytes_.resize(static_cast<std::size_t>(n));
  const std::string space = "\xe2\x96\x81";  // U+2581, SentencePiece's whitespace mark
  for (int id = 0; id < n; ++id) {
    std::int64_t b = 0;
    if (sp_->IsByte(id)) {
      b = 1;
    } else if (!sp_->IsControl(id) && !sp_->IsUnknown(id)) {
      const std::string& p = sp_->IdToPiece(id);
      b = static_cast<std::int64_t>(p.size());
      for (std::size_t at = p.find(space); at != std::string::npos; at = p.find(space, at + space.size()))
        b -= static_cast<std::int64_t>(space.size()) - 1;
    } else if (sp_->IsUnknown(id)) {
      b = static_cast<std::int64_t>(std::string(" \xe2\x81\x87 ").size());  // decodes as " ⁇ "
    }
    piece_bytes_[static_cast<std::size_t>(id)] = b;
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::int64_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
std::int64_t Tokenizer::eos_id() const { return sp_->eos_id(); }
bool Tokenizer::is_byte(std::int64_t id) const {
  return id >= 0 && id < vocab_size() && sp_->IsByte(static_cast<int>(id));
}

std::vector<std::int64_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  if (!st.ok()) throw DataError("tokenizer '" + path_ + "': cannot encode: " + st.ToString());
  return std::vector<std::int64_t>(ids.begin(), ids.end());
}

std::vector<std::int64_t> Tokenizer::encode_blocks(std::string_view text, int threads) const {
  std::vector<std::string_view> parts;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t nl = text.find('\n', std::min(text.size(), at + 4096));
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    parts.push_back(text.substr(at, end - at));
    at = end;
  }
  std::vector<std::vector<std::int64_t>> ids(parts.size());
  const std::size_t n = std::min<std::size_t>(parts.size(), threads > 0 ? static_cast<std::size_t>(threads)
                                                                          : std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next{0};
  std::exception_ptr err;
  std::mutex err_mu;
  auto work = [&] {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < parts.size();) ids[i] = encode(parts[i]);
    } catch (...) {
      std::lock_guard<std::mutex> g(err_mu);
      err = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
  std::vector<std::int64_t> out;
  for (const auto& v : ids) out.insert(out.end(), v.begin(), v.end());
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  const std::int64_t v = vocab_size();
  std::vector<int> in;
  in.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= v)
      throw DataError("tokenizer '" + path_ + "': cannot decode id " + std::to_string(ids[i]) + " (position " +
                      std::to_string(i) + "): the vocabulary has " + std::to_string(v) + " pieces");
    in.push_back(static_cast<int>(ids[i]));
  }
  std::string out;
  const auto st = sp_->Decode(in, &out);
  if (!st.ok()) throw DataError("tokenizer '" + path_ + "': cannot decode: " + st.ToString());
  return out;
}

double Tokenizer::bytes_per_token(const CorpusView& view) const {
  if (view.size() == 0) throw DataError("tokenizer '" + path_ + "': bytes per token of an empty split");
  std::vector<std::int64_t> buf;
  std::int64_t bytes = 0, off = 0;
  const auto v = static_cast<std::int64_t>(piece_bytes_.size());
  for (std::int64_t seg : view.segments()) {
    for (std::int64_t i = 0; i < seg; i += 1 << 20) {
      const std::int64_t n = std::min<std::int64_t>(1 << 20, seg - i);
      buf.resize(static_cast<std::size_t>(n));
      view.read(off + i, n, buf.data());
      for (std::int64_t id : buf) {
        if (id < 0 || id >= v)
          throw DataError("tokenizer '" + path_ + "': token id " + std::to_string(id) + " is outside its vocabulary of " +
                          std::to_string(v));
        bytes += piece_bytes_[static_cast<std::size_t>(id)];
      }
    }
    off += seg;
  }
  return static_cast<double>(bytes) / static_cast<double>(view.size());
}

void train_tokenizer(const TokenizerTrainSpec& s) {
  if (s.inputs.empty()) throw DataError("tokenize train: no --input file given");
  for (const auto& f : s.inputs)
    if (!std::filesystem::is_regular_file(f)) throw DataError("tokenize train: --input '" + f + "': no such file");
  if (s.vocab_size < 260)
    throw DataError("tokenize train: --vocab-size " + std::to_string(s.vocab_size) +
                    ": must be >= 260 (3 special pieces + 256 byte pieces + at least one more)");
  if (s.out.empty()) throw DataError("tokenize train: --out is required");
  std::string inputs;
  for (const auto& f : s.inputs) inputs += (inputs.empty() ? "" : ",") + f;
  const std::unordered_map<std::string, std::string> kw = {
      {"input", inputs},
      {"vocab_size", std::to_string(s.vocab_size)},
      {"model_type", s.model_type},
      {"character_coverage", std::to_string(s.character_coverage)},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"split_digits", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", "1000000"},
      {"input_sentence_size", std::to_string(s.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(std::max(1, s.threads))},
      {"hard_vocab_limit", "true"},
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(s.seed);
  std::string model;
  const auto st = sentencepiece::SentencePieceTrainer::Train(kw, nullptr, &model);
  if (!st.ok()) throw DataError("tokenize train: SentencePiece failed: " + st.ToString());
  const std::string tmp = s.out + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw DataError("tokenize train: cannot create '" + tmp + "'");
    f.write(model.data(), static_cast<std::streamsize>(model.size()));
    if (!f.flush()) {
      std::remove(tmp.c_str());
      throw DataError("tokenize train: cannot write '" + tmp + "'");
    }
  }
  if (std::rename(tmp.c_str(), s.out.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw DataError("tokenize train: cannot rename '" + tmp + "' to '" + s.out + "'");
  }
}

}  // namespace sk::data
