// libFuzzer target: the token-shard opener (data/token_corpus.h) — format detection by content
// (llm.c header, .npy header, raw uint16), size and id checks — and what reads the corpus: views
// split at a cut, the sampler and batch assembly. The first 2 bytes choose the vocabulary and the
// minimum shard length, the rest is the shard file. Rejections are sk::data::DataError; anything
// else is a finding, and so is an opened shard whose tokens break the checks it passed.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "data/batch.h"
#include "data/data_error.h"
#include "data/sampler.h"
#include "data/token_corpus.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sk::data;
  if (size < 2) return 0;
  ShardChecks checks;
  static const std::int64_t vocabs[] = {0, 2, 256, 300, 50257, 65536, 70000, 1 << 30};
  checks.vocab_size = vocabs[data[0] % 8];
  checks.min_tokens = data[1] % 40;
  const std::string path = sk::fuzz::as_file(data + 2, size - 2, ".bin");
  try {
    auto corpus = std::make_shared<TokenCorpus>(TokenCorpus::open_shards({path}, checks));
    const std::int64_t n = corpus->size();
    if (n < checks.min_tokens || corpus->shards().size() != 1) std::abort();
    const ShardInfo& info = corpus->shards()[0];
    if (info.data_offset + n * token_dtype_size(info.dtype) > info.file_bytes) std::abort();
    std::vector<std::int64_t> all(static_cast<std::size_t>(n));
    if (n) corpus->read(0, n, all.data());
    for (std::int64_t t : all)
      if (t < 0 || (checks.vocab_size && t >= checks.vocab_size)) std::abort();
    (void)corpus->fingerprint("train");
    const std::int64_t cut = n - n / 4;  // a train/validation split as Dataset makes it
    for (const auto& [b, e] : {std::pair<std::int64_t, std::int64_t>{0, cut}, {cut, n}}) {
      const CorpusView view(corpus, b, e);
      try {
        SamplerConfig sc;
        sc.seq_len = 1 + data[1] % 16;
        sc.global_batch = 2;
        sc.seed = data[0];
        Sampler s(view.segments(), sc);
        for (int i = 0; i < 2; ++i) {
          const std::vector<std::int64_t> offs = s.next();
          const TokenBatch tb = assemble_batch(view, offs, sc.seq_len);
          if (tb.rows != static_cast<std::int64_t>(offs.size()) || tb.cols != sc.seq_len + 1) std::abort();
        }
      } catch (const DataError&) {
      }
    }
  } catch (const DataError&) {
  }
  return 0;
}
