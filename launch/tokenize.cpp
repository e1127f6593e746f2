// tokenize.cpp — `sinkhorn tokenize train|encode|decode` (SentencePiece, data/tokenizer.h).
//
//   sinkhorn tokenize train --input a.txt [--input b.txt ...] --vocab-size N --out tok.model
//                           [--model-type bpe|unigram|char|word] [--character-coverage X]
//                           [--max-sentences N] [--seed S] [--threads N]
//   sinkhorn tokenize encode --model tok.model --out DIR/shard- [--shard-tokens N] [--append-eos]
//                            [--threads N] a.txt ...
//       -> DIR/shard-000000.bin, DIR/shard-000001.bin, ... (llm.c shards, data/token_corpus.h);
//          the inputs are one token stream in order (read 8 MiB at a time, encoded in ~4 KiB
//          pieces cut after a newline on --threads threads), cut into shards of --shard-tokens
//          (default 100,000,000, llm.c's size)
//   sinkhorn tokenize decode --model tok.model [--out FILE] SHARD...   (text to stdout or FILE)
//
// encode shows a progress bar on stderr when it is a terminal; it always ends with one summary
// line on stdout. Existing shards under the prefix are an error (nothing is written): a glob over
// the prefix must not pick up shards of an earlier run.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "data/token_corpus.h"
#include "data/tokenizer.h"
#include "launch/cli_options.h"
#include "model/core/error.h"

namespace sk {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;

// Opening a file the user named (a tokenizer model, token shards): a bad or missing file is an
// unusable input, exit 2 like a bad option (README "Failure behaviour"), not a runtime failure.
template <class F>
auto open_user_file(F&& open) {
  try {
    return open();
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    rethrow_as_config_error(e, "");
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int tokenize_train(const std::vector<std::string>& args) {
  const std::string usage =
      "tokenize train --input TEXT [--input TEXT]... --vocab-size N --out tok.model [--model-type bpe|unigram|char|word] "
      "[--character-coverage X] [--max-sentences N] [--seed S] [--threads N]";
  po::options_description opts("tokenize train options");
  auto add = opts.add_options();
  add("help,h", "this help");
  add("input", po::value<std::vector<std::string>>()->composing(), "training text file (repeatable; also positional)");
  add("vocab-size", po::value<std::int64_t>()->required(), "pieces in the model (incl. 3 special and 256 byte pieces)");
  add("out", po::value<std::string>()->required(), "model file to write");
  add("model-type", po::value<std::string>()->default_value("bpe"), "bpe | unigram | char | word");
  add("character-coverage", po::value<double>()->default_value(1.0), "fraction of characters given pieces, in (0, 1]");
  add("max-sentences", po::value<std::int64_t>()->default_value(0), "train on at most N sampled lines (0 = all)");
  add("seed", po::value<std::uint32_t>()->default_value(0), "SentencePiece's sampling seed");
  add("threads", po::value<int>()->default_value(2), "trainer threads");
  po::positional_options_description pos;
  pos.add("input", -1);
  po::variables_map vm;
  if (!parse_command_options("tokenize train", args, opts, pos, vm, usage)) return 0;
  data::TokenizerTrainSpec s;
  if (vm.count("input")) s.inputs = vm["input"].as<std::vector<std::string>>();
  s.vocab_size = vm["vocab-size"].as<std::int64_t>();
  s.out = vm["out"].as<std::string>();
  s.model_type = vm["model-type"].as<std::string>();
  SK_CHECK_CONFIG(s.model_type == "bpe" || s.model_type == "unigram" || s.model_type == "char" || s.model_type == "word",
           "tokenize train: --model-type ", s.model_type, ": expected bpe, unigram, char or word");
  s.character_coverage = vm["character-coverage"].as<double>();
  SK_CHECK_CONFIG(s.character_coverage > 0.0 && s.character_coverage <= 1.0, "tokenize train: --character-coverage ",
           s.character_coverage, ": must be in (0, 1]");
  s.max_sentences = vm["max-sentences"].as<std::int64_t>();
  SK_CHECK_CONFIG(s.max_sentences >= 0, "tokenize train: --max-sentences ", s.max_sentences, ": must be >= 0");
  s.seed = vm["seed"].as<std::uint32_t>();
  s.threads = vm["threads"].as<int>();
  SK_CHECK_CONFIG(s.threads >= 1, "tokenize train: --threads ", s.threads, ": must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  data::train_tokenizer(s);
  const data::Tokenizer tok(s.out);
  std::printf("tokenize train: %s model of %lld pieces -> %s (%.1f s)\n", s.model_type.c_str(),
              static_cast<long long>(tok.vocab_size()), s.out.c_str(), seconds_since(t0));
  return 0;
}

// Progress on a terminal: one carriage-returned line on stderr.
class Progress {
 public:
  explicit Progress(std::int64_t total_bytes) : total_(total_bytes), tty_(::isatty(STDERR_FILENO) == 1) {}
  void update(std::int64_t bytes, std::int64_t tokens) {
    if (!tty_) return;
    const double s = seconds_since(t0_);
    if (s - last_ < 0.1 && bytes < total_) return;
    last_ = s;
    const double f = total_ > 0 ? static_cast<double>(bytes) / static_cast<double>(total_) : 1.0;
    const int width = 30, done = static_cast<int>(f * width);
    std::fprintf(stderr, "\rencode [%s%s] %3.0f%%  %.1f MB/s  %lld tokens", std::string(static_cast<std::size_t>(done), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - done), '.').c_str(), 100.0 * f,
                 s > 0 ? static_cast<double>(bytes) / s / 1e6 : 0.0, static_cast<long long>(tokens));
    std::fflush(stderr);
  }
  void done() {
    if (tty_) std::fprintf(stderr, "\n");
  }
  double seconds() const { return seconds_since(t0_); }

 private:
  std::int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  double last_ = -1.0;
};

int tokenize_encode(const std::vector<std::string>& args) {
  const std::string usage =
      "tokenize encode --model tok.model --out DIR/PREFIX [--shard-tokens N] [--append-eos] [--threads N] TEXT...";
  po::options_description opts("tokenize encode options");
  auto add = opts.add_options();
  add("help,h", "this help");
  add("model", po::value<std::string>()->required(), "SentencePiece model (sinkhorn tokenize train)");
  add("out", po::value<std::string>()->required(), "shard path prefix: writes PREFIX000000.bin, PREFIX000001.bin, ...");
  add("shard-tokens", po::value<std::int64_t>()->default_value(100000000), "tokens per shard (the last may be shorter)");
  add("append-eos", "append the model's </s> after each input file (a document separator)");
  add("threads", po::value<int>()->default_value(0), "encoding threads (0: one per core)");
  add("input", po::value<std::vector<std::string>>()->composing(), "text files, in order");
  po::positional_options_description pos;
  pos.add("input", -1);
  po::variables_map vm;
  if (!parse_command_options("tokenize encode", args, opts, pos, vm, usage)) return 0;
  SK_CHECK_CONFIG(vm.count("input"), "tokenize encode: no input text file (usage: sinkhorn ", usage, ")");
  const auto inputs = vm["input"].as<std::vector<std::string>>();
  const std::string prefix = vm["out"].as<std::string>();
  const std::int64_t per_shard = vm["shard-tokens"].as<std::int64_t>();
  SK_CHECK_CONFIG(per_shard >= 1 && per_shard <= 2147483647, "tokenize encode: --shard-tokens ", per_shard,
           ": must be in [1, 2^31 - 1] (llm.c header)");
  const data::Tokenizer tok = open_user_file([&] { return data::Tokenizer(vm["model"].as<std::string>()); });
  const bool eos = vm.count("append-eos") > 0;
  const int threads = vm["threads"].as<int>();
  SK_CHECK_CONFIG(threads >= 0, "tokenize encode: --threads ", threads, ": must be >= 0");
  SK_CHECK_CONFIG(!eos || tok.eos_id() >= 0, "tokenize encode: --append-eos: model '", tok.path(), "' has no </s> piece");

  // Everything that can fail on bad input first: the inputs exist, no shard of an earlier run.
  std::int64_t total = 0;
  for (const auto& f : inputs) {
    std::error_code ec;
    SK_CHECK_CONFIG(fs::is_regular_file(f, ec), "tokenize encode: input '", f, "': no such file");
    total += static_cast<std::int64_t>(fs::file_size(f));
  }
  const fs::path pre(prefix);
  const fs::path dir = pre.has_parent_path() ? pre.parent_path() : fs::path(".");
  const std::string stem = pre.filename().string();
  SK_CHECK_CONFIG(!stem.empty(), "tokenize encode: --out ", prefix, ": give a file name prefix, e.g. DIR/shard-");
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      const bool ours = n.size() == stem.size() + 10 && n.compare(0, stem.size(), stem) == 0 &&
                        n.compare(n.size() - 4, 4, ".bin") == 0 &&
                        n.find_first_not_of("0123456789", stem.size()) == n.size() - 4;
      SK_CHECK_CONFIG(!ours,
               "tokenize encode: --out ", prefix, ": '", e.path().string(),
               "' already exists (remove the old shards or choose another prefix)");
    }
  fs::create_directories(dir);

  std::vector<std::int64_t> buf;
  std::vector<std::string> written;
  std::int64_t tokens = 0, bytes = 0;
  data::TokenDType dtype = data::TokenDType::u16;
  auto emit = [&](bool final) {
    while (static_cast<std::int64_t>(buf.size()) >= per_shard || (final && !buf.empty())) {
      const std::int64_t n = std::min<std::int64_t>(per_shard, static_cast<std::int64_t>(buf.size()));
      char name[32];
      std::snprintf(name, sizeof name, "%06zu.bin", written.size());
      const std::string path = prefix + name;
      dtype = data::write_llmc_shard(path, buf.data(), n, tok.vocab_size());
      written.push_back(path);
      buf.erase(buf.begin(), buf.begin() + n);
    }
  };
  Progress bar(total);
  std::string block, carry;
  for (const auto& f : inputs) {
    std::ifstream in(f, std::ios::binary);
    SK_CHECK(in.good(), "tokenize encode: cannot read '", f, "'");
    std::vector<char> chunk(8 << 20);
    while (in) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      const auto got = static_cast<std::size_t>(in.gcount());
      SK_CHECK(!in.bad(), "tokenize encode: cannot read '", f, "'");
      if (got == 0) break;
      block = carry;
      block.append(chunk.data(), got);
      // Encode up to the last newline; the rest waits for the next block (or the file's end).
      const std::size_t nl = block.rfind('\n');
      // (A text with no newline for 64 MiB is encoded in 64 MiB pieces.)
      const bool more = in && block.size() < (std::size_t{64} << 20);
      const std::size_t cut = (more && nl != std::string::npos) ? nl + 1 : (more ? 0 : block.size());
      carry = block.substr(cut);
      if (cut > 0) {
        const auto ids = tok.encode_blocks(std::string_view(block).substr(0, cut), threads);
        buf.insert(buf.end(), ids.begin(), ids.end());
        tokens += static_cast<std::int64_t>(ids.size());
      }
      bytes += static_cast<std::int64_t>(got);
      emit(false);
      bar.update(bytes, tokens);
    }
    if (!carry.empty()) {
      const auto ids = tok.encode_blocks(carry, threads);
      buf.insert(buf.end(), ids.begin(), ids.end());
      tokens += static_cast<std::int64_t>(ids.size());
      carry.clear();
    }
    if (eos) {
      buf.push_back(tok.eos_id());
      ++tokens;
    }
    emit(false);
  }
  emit(true);
  bar.update(bytes, tokens);
  bar.done();
  std::printf("tokenize encode: %zu file(s), %lld bytes -> %lld tokens (%.2f bytes/token) in %zu %s shard(s) %s%s, %.1f s\n",
              inputs.size(), static_cast<long long>(bytes), static_cast<long long>(tokens),
              tokens ? static_cast<double>(bytes) / static_cast<double>(tokens) : 0.0, written.size(),
              data::token_dtype_name(dtype), written.empty() ? "(none)" : written.front().c_str(),
              written.size() > 1 ? (" … " + written.back()).c_str() : "", bar.seconds());
  return 0;
}

int tokenize_decode(const std::vector<std::string>& args) {
  const std::string usage = "tokenize decode --model tok.model [--out FILE] SHARD...";
  po::options_description opts("tokenize decode options");
  auto add = opts.add_options();
  add("help,h", "this help");
  add("model", po::value<std::string>()->required(), "SentencePiece model the shards were encoded with");
  add("out", po::value<std::string>(), "text file to write (default: stdout)");
  add("shard", po::value<std::vector<std::string>>()->composing(), "token shards or globs, in order");
  po::positional_options_description pos;
  pos.add("shard", -1);
  po::variables_map vm;
  if (!parse_command_options("tokenize decode", args, opts, pos, vm, usage)) return 0;
  SK_CHECK_CONFIG(vm.count("shard"), "tokenize decode: no shard given (usage: sinkhorn ", usage, ")");
  const data::Tokenizer tok = open_user_file([&] { return data::Tokenizer(vm["model"].as<std::string>()); });
  // Every shard is opened and checked (ids below the model's vocabulary) before any text is written.
  const data::TokenCorpus corpus = open_user_file([&] {
    const auto files = data::expand_paths(vm["shard"].as<std::vector<std::string>>(), "tokenize decode");
    return data::TokenCorpus::open_shards(files, data::ShardChecks{tok.vocab_size(), 0, "the tokenizer's vocabulary"});
  });
  std::ofstream file;
  if (vm.count("out")) {
    file.open(vm["out"].as<std::string>(), std::ios::binary | std::ios::trunc);
    SK_CHECK(file.good(), "tokenize decode: cannot create '", vm["out"].as<std::string>(), "'");
  }
  std::ostream& out = vm.count("out") ? static_cast<std::ostream&>(file) : std::cout;
  // Blocks of ~1M tokens, never cut inside a run of byte pieces (one UTF-8 character may span several).
  const std::int64_t n = corpus.size();
  std::vector<std::int64_t> ids;
  for (std::int64_t at = 0; at < n;) {
    std::int64_t end = std::min(n, at + (1 << 20));
    std::int64_t next = 0;
    while (end < n && (corpus.read(end, 1, &next), tok.is_byte(next))) ++end;
    ids.resize(static_cast<std::size_t>(end - at));
    corpus.read(at, end - at, ids.data());
    const std::string text = tok.decode(ids);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    at = end;
  }
  out.flush();
  SK_CHECK(out.good(), "tokenize decode: writing the text failed");
  return 0;
}

}  // namespace

int cmd_tokenize(const std::vector<std::string>& args) {
  const std::string usage = "tokenize train|encode|decode [options] (sinkhorn tokenize <sub> --help)";
  SK_CHECK_CONFIG(!args.empty(), "tokenize: missing subcommand (usage: sinkhorn ", usage, ")");
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "train") return tokenize_train(rest);
  if (sub == "encode") return tokenize_encode(rest);
  if (sub == "decode") return tokenize_decode(rest);
  if (sub == "-h" || sub == "--help") {
    std::cout << "usage: sinkhorn " << usage << "\n";
    return 0;
  }
  throw ConfigError(cat("tokenize: unknown subcommand '", sub, "' (expected train, encode or decode)"));
}

}  // namespace sk
