// data_bench — throughput of the data path on memory-mapped token shards (never part of ctest;
// tests/bench/run_data_bench.sh runs it next to `sinkhorn bench` and compares with a step).
//
//   data_bench DIR [--shards N] [--shard-tokens M] [--vocab V] [--batch B] [--seq T] [--batches K]
//
// Writes N llm.c shards of M tokens (uint16 when V <= 65536, else uint32) into DIR (kept for reuse
// when present with the same sizes), then times, on one thread:
//   open    TokenCorpus::open_shards with the id check (every token read once): GB/s, tokens/s
//   sample  Sampler(view.segments()) offsets + assemble_batch of K batches [B, T+1] from the mmapped
//           shards (random windows; the page cache is warm after `open`): tokens/s delivered
// and prints one JSON line last.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/batch.h"
#include "data/sampler.h"
#include "data/token_corpus.h"

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: data_bench DIR [--shards N] [--shard-tokens M] [--vocab V] [--batch B] [--seq T] [--batches K]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::int64_t shards = 4, per = 25'000'000, vocab = 50257, B = 4, T = 512, K = 2000;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::int64_t v = std::atoll(argv[i + 1]);
    if (k == "--shards") shards = v;
    else if (k == "--shard-tokens") per = v;
    else if (k == "--vocab") vocab = v;
    else if (k == "--batch") B = v;
    else if (k == "--seq") T = v;
    else if (k == "--batches") K = v;
    else {
      std::fprintf(stderr, "data_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    std::filesystem::create_directories(dir);
    std::vector<std::string> files;
    const int width = vocab <= 65536 ? 2 : 4;
    for (std::int64_t s = 0; s < shards; ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "/bench-%06lld.bin", static_cast<long long>(s));
      files.push_back(dir + name);
      std::error_code ec;
      if (std::filesystem::file_size(files.back(), ec) == static_cast<std::uintmax_t>(1024 + per * width)) continue;
      std::vector<std::int64_t> tok(static_cast<std::size_t>(per));
      std::uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(s + 1);
      for (auto& t : tok) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t = static_cast<std::int64_t>(x % static_cast<std::uint64_t>(vocab));
      }
      sk::data::write_llmc_shard(files.back(), tok.data(), per, vocab);
    }
    // open: format detection + the id check over every token.
    double t0 = now();
    auto corpus = std::make_shared<sk::data::TokenCorpus>(
        sk::data::TokenCorpus::open_shards(files, sk::data::ShardChecks{vocab, T + 1, "vocab"}));
    const double open_s = now() - t0;
    const double bytes = static_cast<double>(corpus->size()) * width;
    // sample + assemble.
    sk::data::CorpusView view(corpus, 0, corpus->size());
    sk::data::SamplerConfig sc;
    sc.seq_len = T;
    sc.global_batch = B;
    sc.seed = 1;
    sk::data::Sampler sampler(view.segments(), sc);
    std::int64_t check = 0;
    t0 = now();
    for (std::int64_t k = 0; k < K; ++k) {
      const sk::data::TokenBatch b = sk::data::assemble_batch(view, sampler.next(), T);
      check += b.tokens[static_cast<std::size_t>(k % static_cast<std::int64_t>(b.tokens.size()))];
    }
    const double sample_s = now() - t0;
    const double delivered = static_cast<double>(K * B * T) / sample_s;
    std::fprintf(stderr, "open: %lld shards, %lld tokens, %.3f s (%.2f GB/s, %.3g tokens/s)\n",
                 static_cast<long long>(shards), static_cast<long long>(corpus->size()), open_s, bytes / open_s / 1e9,
                 static_cast<double>(corpus->size()) / open_s);
    std::fprintf(stderr, "sample+assemble: %lld batches [%lld, %lld], %.3f s, %.3g tokens/s (checksum %lld)\n",
                 static_cast<long long>(K), static_cast<long long>(B), static_cast<long long>(T + 1), sample_s, delivered,
                 static_cast<long long>(check));
    std::printf("{\"shards\":%lld,\"tokens\":%lld,\"token_bytes\":%d,\"open_s\":%.6f,\"open_gb_per_s\":%.4f,"
                "\"batch\":%lld,\"seq_len\":%lld,\"batches\":%lld,\"sample_s\":%.6f,\"delivered_tokens_per_s\":%.1f}\n",
                static_cast<long long>(shards), static_cast<long long>(corpus->size()), width, open_s, bytes / open_s / 1e9,
                static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(K), sample_s, delivered);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "data_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
