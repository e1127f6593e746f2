// libFuzzer target: the byte dataset opener (data/byte_dataset.h) and what reads it — the sampler
// and batch assembly. The first 6 bytes choose the split and sampling sizes, the rest is the corpus
// file. Rejections are sk::data::DataError; anything else (a read outside the mapping, a crash, a
// sanitizer report) is a finding. Every assembled window must lie in the split it came from.
#include <cstdint>
#include <cstdlib>

#include "data/batch.h"
#include "data/byte_dataset.h"
#include "data/data_error.h"
#include "data/sampler.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sk::data;
  if (size < 6) return 0;
  const double val_fraction = data[0] / 255.0;  // 1.0 is out of range: rejected
  SamplerConfig sc;
  sc.seq_len = 1 + data[1] % 64;
  sc.global_batch = 1 + data[2] % 8;
  sc.dp_size = 1 + data[3] % 4;
  sc.dp_rank = data[4] % 5;  // may be out of range: rejected
  sc.order = (data[5] & 1) ? SampleOrder::shuffled_chunks : SampleOrder::random_windows;
  sc.seed = data[5];
  const std::string path = sk::fuzz::as_file(data + 6, size - 6, ".txt");
  try {
    ByteDataset ds(path, val_fraction);
    if (ds.train().size + ds.val().size != static_cast<std::int64_t>(size - 6)) std::abort();
    for (const TokenSpan span : {ds.train(), ds.val()}) {
      try {
        Sampler s(span.size, sc);
        for (int i = 0; i < 3; ++i) {
          const std::vector<std::int64_t> offs = s.next();
          for (std::int64_t o : offs)
            if (o < 0 || o + sc.seq_len + 1 > span.size) std::abort();
          const TokenBatch b = assemble_batch(span, offs, sc.seq_len);
          if (b.rows != static_cast<std::int64_t>(offs.size()) || b.cols != sc.seq_len + 1) std::abort();
        }
      } catch (const DataError&) {
      }
    }
  } catch (const DataError&) {
  }
  return 0;
}
