// Token shards: every format written by numpy (the independent writer: llm.c's write_datafile
// layout, np.save v1/v2/v3, ndarray.tofile), read back through TokenCorpus; every bad-input rule
// with the file and byte offset in its message; views, the segmented sampler and batch assembly;
// fingerprints against Python's zlib.crc32; validation windows and bits per byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <map>
#include <set>

#include "data/batch.h"
#include "data/byte_dataset.h"
#include "data/data_error.h"
#include "data/sampler.h"
#include "data/token_corpus.h"
#include "data/validation.h"
#include "tests/tools/test_util.h"

namespace sk::data {
namespace {

using sk::test::run_python;
using sk::test::TempDir;

// The token every writer below puts at position i of file k (vocabulary v).
std::int64_t tok(int k, std::int64_t i, std::int64_t v) { return (i * 7919 + 31 * k) % v; }

// Python source: tok() for numpy, and llm.c's header layout (dev/data/data_common.py).
const char* kPyHelpers = R"(
import numpy as np, zlib, sys
def tok(k, n, v):
    return (np.arange(n, dtype=np.int64) * 7919 + 31 * k) % v
def llmc(path, toks, magic=20240520, version=1, dtype=np.uint16, count=None):
    h = np.zeros(256, dtype=np.int32)
    h[0] = magic; h[1] = version; h[2] = len(toks) if count is None else count
    with open(path, 'wb') as f:
        f.write(h.tobytes()); f.write(np.asarray(toks, dtype=dtype).tobytes())
def npy(path, arr, version):
    with open(path, 'wb') as f:
        np.lib.format.write_array(f, arr, version=version)
)";

void expect_tokens(const TokenCorpus& c, int k_of_first, std::int64_t v) {
  std::vector<std::int64_t> got(static_cast<std::size_t>(c.size()));
  c.read(0, c.size(), got.data());
  for (std::int64_t i = 0; i < c.size(); ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], tok(k_of_first, i, v)) << i;
}

std::string error_of(const std::function<void()>& f) { return sk::test::error_of<DataError>(f); }

DatasetSpec token_spec(const std::string& glob, double val_fraction) {
  DatasetSpec s;
  s.format = "tokens";
  s.paths = {glob};
  s.val_fraction = val_fraction;
  return s;
}

TEST(TokenShards, EveryFormatWrittenByNumpyReadsBack) {
  TempDir d;
  run_python(std::string(kPyHelpers) + R"(
llmc('gpt2.bin', tok(0, 5000, 50257))
llmc('llama.bin', tok(1, 3000, 128256), magic=20240801, version=7, dtype=np.uint32)
tok(2, 4001, 65536).astype('<u2').tofile('nanogpt.bin')
npy('v1.npy', tok(3, 2000, 30000).astype('<u2'), (1, 0))
npy('v2.npy', tok(4, 2100, 100000).astype('<u4'), (2, 0))
npy('v3.npy', tok(5, 2200, 2**31 - 1).astype('<i4'), (3, 0))
np.save('u1.npy', tok(6, 999, 256).astype(np.uint8))
)",
             d.path);
  struct Case {
    const char* file;
    ShardFormat fmt;
    TokenDType dt;
    std::int64_t n, v;
    int k;
    std::int64_t offset;
  };
  const Case cases[] = {{"gpt2.bin", ShardFormat::llmc, TokenDType::u16, 5000, 50257, 0, 1024},
                        {"llama.bin", ShardFormat::llmc, TokenDType::u32, 3000, 128256, 1, 1024},
                        {"nanogpt.bin", ShardFormat::raw_u16, TokenDType::u16, 4001, 65536, 2, 0},
                        {"v1.npy", ShardFormat::npy, TokenDType::u16, 2000, 30000, 3, -1},
                        {"v2.npy", ShardFormat::npy, TokenDType::u32, 2100, 100000, 4, -1},
                        {"v3.npy", ShardFormat::npy, TokenDType::i32, 2200, (std::int64_t{1} << 31) - 1, 5, -1},
                        {"u1.npy", ShardFormat::npy, TokenDType::u8, 999, 256, 6, -1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    TokenCorpus corpus = TokenCorpus::open_shards({d / c.file}, ShardChecks{c.v, 0});
    ASSERT_EQ(corpus.shards().size(), 1u);
    const ShardInfo& s = corpus.shards()[0];
    EXPECT_EQ(s.format, c.fmt);
    EXPECT_EQ(s.dtype, c.dt);
    EXPECT_EQ(s.tokens, c.n);
    EXPECT_EQ(corpus.size(), c.n);
    if (c.offset >= 0) {
      EXPECT_EQ(s.data_offset, c.offset);
    }
    EXPECT_EQ(s.data_offset + s.tokens * token_dtype_size(s.dtype), s.file_bytes);
    std::int64_t mx = 0;
    for (std::int64_t i = 0; i < c.n; ++i) mx = std::max(mx, tok(c.k, i, c.v));
    EXPECT_EQ(s.max_token, mx);
    expect_tokens(corpus, c.k, c.v);
  }
}

TEST(TokenShards, ConcatenationReadsAcrossShardsAndViewsStopAtThem) {
  TempDir d;
  run_python(std::string(kPyHelpers) + R"(
llmc('s0.bin', tok(0, 100, 1000)); llmc('s1.bin', tok(0, 250, 1000)[100:]); llmc('s2.bin', tok(0, 300, 1000)[250:])
)",
             d.path);
  // Sorted glob: s0, s1, s2 hold tokens 0-99, 100-249, 250-299 of one stream.
  auto files = expand_paths({d / "s*.bin"}, "data.path");
  ASSERT_EQ(files.size(), 3u);
  auto corpus = std::make_shared<TokenCorpus>(TokenCorpus::open_shards(files, ShardChecks{1000, 0}));
  EXPECT_EQ(corpus->size(), 300);
  expect_tokens(*corpus, 0, 1000);
  EXPECT_EQ(corpus->shard_sizes(), (std::vector<std::int64_t>{100, 150, 50}));

  CorpusView v(corpus, 80, 280);  // cuts s0 at 80 and s2 at 280
  EXPECT_EQ(v.size(), 200);
  EXPECT_EQ(v.segments(), (std::vector<std::int64_t>{20, 150, 30}));
  std::vector<std::int64_t> w(10);
  v.read(20, 10, w.data());  // the start of s1
  for (int i = 0; i < 10; ++i) EXPECT_EQ(w[static_cast<std::size_t>(i)], tok(0, 100 + i, 1000));
  const std::string e = error_of([&] { v.read(15, 10, w.data()); });
  EXPECT_NE(e.find("crosses the end of shard '" + files[0] + "'"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { v.read(195, 10, w.data()); }).find("outside"), std::string::npos);
  EXPECT_EQ(v.head(50).size(), 20u);  // the first segment only

  // Batches over the view: row r = view tokens [off, off + T + 1).
  TokenBatch b = assemble_batch(v, {0, 20, 160, 170}, 9);
  ASSERT_EQ(b.rows, 4);
  EXPECT_EQ(b.at(0, 0), tok(0, 80, 1000));
  EXPECT_EQ(b.at(2, 9), tok(0, 80 + 160 + 9, 1000));
  EXPECT_THROW(assemble_batch(v, {161}, 9), DataError);
  EXPECT_EQ(b.at(3, 0), tok(0, 250, 1000));
  EXPECT_THROW(assemble_batch(v, {15}, 9), DataError);
}

TEST(TokenShards, BadInputNamesFileAndOffset) {
  TempDir d;
  run_python(std::string(kPyHelpers) + R"(
t = tok(0, 600, 1000)
llmc('magic.bin', t, magic=20240521)
llmc('version.bin', t, version=2)
llmc('version32.bin', t, magic=20240801, version=1, dtype=np.uint32)
llmc('trunc.bin', t); open('trunc.bin', 'r+b').truncate(1024 + 2 * 600 - 3)
llmc('count.bin', t, count=700)
t.astype('<u2').tofile('odd.bin'); open('odd.bin', 'ab').write(b'x')
bad = t.copy(); bad[345] = 1000
llmc('vocab.bin', bad)
npy('neg.npy', np.array([1, 2, -7, 4] * 200, dtype='<i4'), (1, 0))
np.save('twod.npy', t.reshape(20, 30).astype(np.uint16))
np.save('float.npy', t.astype(np.float32))
np.save('big.npy', t.astype('>u2'))
np.save('tnpy.npy', t.astype(np.uint16)); open('tnpy.npy', 'r+b').truncate(128 + 1000)
llmc('short.bin', t[:64])
)",
             d.path);
  const ShardChecks checks{1000, 65};
  auto err = [&](const std::string& f) { return error_of([&] { TokenCorpus::open_shards({d / f}, checks); }); };
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos ? ::testing::AssertionSuccess()
                                               : ::testing::AssertionFailure() << "'" << part << "' not in: " << msg;
  };
  for (const char* f : {"magic.bin", "version.bin", "version32.bin", "trunc.bin", "count.bin", "odd.bin", "vocab.bin",
                        "neg.npy", "twod.npy", "float.npy", "big.npy", "tnpy.npy", "short.bin"}) {
    const std::string e = err(f);
    EXPECT_TRUE(has(e, "'" + d / f + "'")) << f;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_TRUE(has(err("magic.bin"), "has magic 20240521"));
  EXPECT_TRUE(has(err("version.bin"), "byte offset 4: version 2 with magic 20240520 (expected version 1"));
  EXPECT_TRUE(has(err("version32.bin"), "version 1 with magic 20240801 (expected version 7"));
  EXPECT_TRUE(has(err("trunc.bin"), "truncated at byte offset 2221"));
  EXPECT_TRUE(has(err("count.bin"), "says 700 uint16 tokens"));
  EXPECT_TRUE(has(err("odd.bin"), "odd size for raw uint16 tokens"));
  EXPECT_TRUE(has(err("vocab.bin"), "token 345 at byte offset 1714 is 1000, not below the vocabulary size"));
  EXPECT_TRUE(has(err("neg.npy"), "token 2 at byte offset"));
  EXPECT_TRUE(has(err("neg.npy"), "is -7, a negative id"));
  EXPECT_TRUE(has(err("twod.npy"), "shape (20, 30)"));
  EXPECT_TRUE(has(err("float.npy"), "dtype '<f4'"));
  EXPECT_TRUE(has(err("big.npy"), "dtype '>u2'"));
  EXPECT_TRUE(has(err("tnpy.npy"), "(truncated)"));
  EXPECT_TRUE(has(err("short.bin"), "64 tokens, fewer than one window of seq_len + 1 = 65"));
  EXPECT_TRUE(has(err("missing.bin"), "cannot open dataset file '" + d / "missing.bin" + "'"));
  EXPECT_TRUE(has(error_of([&] { expand_paths({d / "nothing-*.bin"}, "data.path"); }),
                  "data.path '" + d / "nothing-*.bin" + "': the pattern matches no file"));
  // Without a vocabulary limit the same ids pass; the shard then reports its largest id.
  EXPECT_EQ(TokenCorpus::open_shards({d / "vocab.bin"}, ShardChecks{}).shards()[0].max_token, 1000);
}

TEST(TokenShards, WriterOutputReadByNumpy) {
  TempDir d;
  std::vector<std::int64_t> small(777), big(333);
  for (std::size_t i = 0; i < small.size(); ++i) small[i] = tok(0, static_cast<std::int64_t>(i), 65536);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = tok(1, static_cast<std::int64_t>(i), 70000);
  EXPECT_EQ(write_llmc_shard(d / "a.bin", small.data(), 777, 65536), TokenDType::u16);
  EXPECT_EQ(write_llmc_shard(d / "b.bin", big.data(), 333, 70000), TokenDType::u32);
  EXPECT_THROW(write_llmc_shard(d / "c.bin", big.data(), 333, 65536), DataError);  // 66000+ does not fit
  run_python(std::string(kPyHelpers) + R"(
for name, k, n, v, magic, version, dt in [('a.bin', 0, 777, 65536, 20240520, 1, np.uint16),
                                          ('b.bin', 1, 333, 70000, 20240801, 7, np.uint32)]:
    raw = open(name, 'rb').read()
    h = np.frombuffer(raw[:1024], dtype='<i4')
    assert (h[0], h[1], h[2]) == (magic, version, n), h[:3]
    assert not h[3:].any()
    t = np.frombuffer(raw[1024:], dtype=dt)
    assert len(t) == n and (t.astype(np.int64) == tok(k, n, v)).all(), name
)",
             d.path);
  EXPECT_FALSE(std::filesystem::exists(d / "c.bin"));
}

SamplerConfig scfg(SampleOrder o, std::int64_t T, std::int64_t B, std::uint64_t seed = 3, int r = 0, int R = 1) {
  return SamplerConfig{.seq_len = T, .global_batch = B, .seed = seed, .dp_rank = r, .dp_size = R, .order = o};
}

TEST(SegmentedSampler, OneSegmentIsThePlainSampler) {
  for (SampleOrder o : {SampleOrder::random_windows, SampleOrder::shuffled_chunks}) {
    Sampler a(5000, scfg(o, 16, 8)), b(std::vector<std::int64_t>{5000}, scfg(o, 16, 8));
    for (int s = 0; s < 20; ++s) EXPECT_EQ(a.next(), b.next());
  }
}

TEST(SegmentedSampler, WindowsStayInsideSegmentsAndCoverThemFairly) {
  const std::vector<std::int64_t> seg = {500, 10, 0, 2000, 33, 1500};  // 10 and 0 hold no window of 33
  const std::int64_t T = 32;
  std::vector<std::int64_t> begin;
  std::int64_t pos = 0;
  for (auto n : seg) begin.push_back(pos), pos += n;
  auto segment_of = [&](std::int64_t off) {
    for (std::size_t k = seg.size(); k-- > 0;)
      if (off >= begin[k] && seg[k] > 0) return k;
    return std::size_t{0};
  };
  for (SampleOrder o : {SampleOrder::random_windows, SampleOrder::shuffled_chunks}) {
    Sampler s(seg, scfg(o, T, 16));
    std::map<std::size_t, std::int64_t> hits;
    std::set<std::int64_t> seen;
    const int steps = o == SampleOrder::shuffled_chunks ? static_cast<int>(s.chunks() / 16) : 400;
    for (int st = 0; st < steps; ++st)
      for (auto off : s.next()) {
        const std::size_t k = segment_of(off);
        ASSERT_LE(off + T + 1, begin[k] + seg[k]) << "window at " << off << " leaves segment " << k;
        ++hits[k];
        seen.insert(off);
      }
    EXPECT_EQ(hits.count(1), 0u);
    EXPECT_EQ(hits.count(2), 0u);
    if (o == SampleOrder::shuffled_chunks) {
      // C = 15 + 0 + 0 + 62 + 1 + 46 = 124 chunks; one epoch (7 steps of 16 = 112) visits distinct ones, at c*T.
      EXPECT_EQ(s.chunks(), 124);
      EXPECT_EQ(seen.size(), 112u);
      for (auto off : seen) EXPECT_EQ((off - begin[segment_of(off)]) % T, 0);
    } else {
      // S = 468 + 1968 + 1 + 1468 = 3905 starts; 6400 draws split in proportion (loosely).
      EXPECT_EQ(s.starts(), 3905);
      EXPECT_NEAR(static_cast<double>(hits[3]) / 6400, 1968.0 / 3905, 0.03);
      EXPECT_NEAR(static_cast<double>(hits[5]) / 6400, 1468.0 / 3905, 0.03);
      EXPECT_NEAR(static_cast<double>(hits[0]) / 6400, 468.0 / 3905, 0.03);
    }
  }
  EXPECT_THROW(Sampler(std::vector<std::int64_t>{10, 20, 32}, scfg(SampleOrder::random_windows, 32, 4)), DataError);
}

TEST(SegmentedSampler, ResumesAndSplitsOverRanksLikeOneProcess) {
  const std::vector<std::int64_t> seg = {3000, 700, 4100};
  for (SampleOrder o : {SampleOrder::random_windows, SampleOrder::shuffled_chunks}) {
    Sampler one(seg, scfg(o, 64, 8));
    for (int i = 0; i < 5; ++i) one.next();
    const SamplerCursor cur = one.cursor();
    std::vector<Sampler> two;
    for (int r = 0; r < 2; ++r) {
      two.emplace_back(seg, scfg(o, 64, 8, 3, r, 2));
      two.back().restore(cur);
    }
    for (int st = 0; st < 10; ++st) {
      auto whole = one.next();
      auto a = two[0].next(), b = two[1].next();
      a.insert(a.end(), b.begin(), b.end());
      EXPECT_EQ(a, whole);
    }
  }
}

TEST(TokenDataset, SplitsByFractionOrValPathAndMatchesTheByteDataset) {
  TempDir d;
  run_python(std::string(kPyHelpers) + R"(
llmc('train_000.bin', tok(0, 3000, 4000)); llmc('train_001.bin', tok(0, 5000, 4000)[3000:])
np.save('val.npy', tok(9, 1200, 4000).astype(np.uint16))
open('text.txt', 'wb').write(bytes(range(256)) * 40)
)",
             d.path);
  DatasetSpec spec = token_spec(d / "train_*.bin", 0.1);
  spec.vocab_size = 4000;
  spec.seq_len = 128;
  Dataset a(spec);
  EXPECT_EQ(a.train().size(), 4500);
  EXPECT_EQ(a.val().size(), 500);
  EXPECT_EQ(a.train().segments(), (std::vector<std::int64_t>{3000, 1500}));
  EXPECT_EQ(a.val().segments(), (std::vector<std::int64_t>{500}));
  EXPECT_EQ(a.val().head(3), (std::vector<std::int64_t>{tok(0, 4500, 4000), tok(0, 4501, 4000), tok(0, 4502, 4000)}));

  spec.val_paths = {d / "val.npy"};
  Dataset b(spec);
  EXPECT_EQ(b.train().size(), 5000);
  EXPECT_EQ(b.val().size(), 1200);
  EXPECT_EQ(b.val().head(2), (std::vector<std::int64_t>{tok(9, 0, 4000), tok(9, 1, 4000)}));
  spec.vocab_size = 3999;
  EXPECT_NE(error_of([&] { Dataset x(spec); }).find("not below the vocabulary size (model.num_tokens = 3999)"),
            std::string::npos);

  // format = "bytes" is today's ByteDataset: same spans, same sampler offsets, same batches.
  DatasetSpec bs;
  bs.paths = {d / "text.txt"};
  bs.val_fraction = 0.05;
  Dataset c(bs);
  ByteDataset old(d / "text.txt", 0.05);
  ASSERT_EQ(c.train().bytes().size, old.train().size);
  EXPECT_TRUE(std::equal(old.all().data, old.all().data + old.all().size, c.train().bytes().data));
  EXPECT_EQ(c.train().size(), old.train().size);
  EXPECT_EQ(c.val().size(), old.val().size);
  Sampler s_new(c.train().segments(), scfg(SampleOrder::random_windows, 64, 4));
  Sampler s_old(old.train().size, scfg(SampleOrder::random_windows, 64, 4));
  for (int st = 0; st < 5; ++st) {
    auto offs = s_new.next();
    EXPECT_EQ(offs, s_old.next());
    EXPECT_EQ(assemble_batch(c.train(), offs, 64).tokens, assemble_batch(old.train(), offs, 64).tokens);
  }
  bs.paths.push_back(d / "text.txt");
  EXPECT_THROW(Dataset x(bs), DataError);
}

TEST(TokenDataset, FingerprintMatchesPythonCrcAndNamesTheChangedShard) {
  TempDir d;
  run_python(std::string(kPyHelpers) + R"(
for k in range(3):
    llmc('s%d.bin' % k, tok(k, 700000 + 1000 * k, 50000))
)",
             d.path);
  const DatasetSpec spec = token_spec(d / "s*.bin", 0.01);
  const DataFingerprint f = Dataset(spec).fingerprint();
  ASSERT_EQ(f.shards.size(), 3u);
  // zlib.crc32 of the first and last MiB, computed by Python.
  const std::string crcs = run_python(R"(
import zlib, os
for k in range(3):
    b = open('s%d.bin' % k, 'rb').read(); m = min(len(b), 1 << 20)
    print(zlib.crc32(b[:m]), zlib.crc32(b[len(b) - m:]), len(b))
)",
                                      d.path);
  std::istringstream in(crcs);
  for (const auto& s : f.shards) {
    std::uint64_t h = 0, t = 0;
    std::int64_t n = 0;
    in >> h >> t >> n;
    EXPECT_EQ(s.crc_head, h);
    EXPECT_EQ(s.crc_tail, t);
    EXPECT_EQ(s.file_bytes, n);
    EXPECT_EQ(s.role, "train");
    EXPECT_EQ(s.format, "llm.c");
    EXPECT_EQ(s.dtype, "uint16");
  }
  EXPECT_NO_THROW(check_same_data(f, Dataset(spec).fingerprint()));

  // One token of s1's last MiB changes: named.
  run_python("import numpy as np\nm = np.memmap('s1.bin', dtype=np.uint16, mode='r+')\nm[-5] ^= 1\nm.flush()\n", d.path);
  std::string e = error_of([&] { check_same_data(f, Dataset(spec).fingerprint()); });
  EXPECT_NE(e.find("train shard 1 '" + d / "s1.bin" + "' has other content"), std::string::npos) << e;
  // A shard removed / a shard longer / the split changed.
  const DataFingerprint f1 = Dataset(spec).fingerprint();
  std::filesystem::remove(d / "s2.bin");
  e = error_of([&] { check_same_data(f1, Dataset(spec).fingerprint()); });
  EXPECT_NE(e.find("trained on 3 shards, the config gives 2 (missing: '" + d / "s2.bin" + "')"), std::string::npos) << e;
  DataFingerprint g = f;
  g.shards[0].tokens += 1;
  e = error_of([&] { check_same_data(f, g); });
  EXPECT_NE(e.find("shard 0 '" + d / "s0.bin" + "' has 700001 tokens"), std::string::npos) << e;
  g = f;
  g.val_fraction = 0.02;
  EXPECT_NE(error_of([&] { check_same_data(f, g); }).find("val_fraction"), std::string::npos);
  g = f;
  for (auto& s : g.shards) s.path = "/moved/" + std::filesystem::path(s.path).filename().string();
  EXPECT_NO_THROW(check_same_data(f, g));  // moved data with the same content resumes
}

TEST(ValidationWindows, WholeSplitBackToBackEveryTargetOnce) {
  const std::vector<std::int64_t> seg = {1000, 40, 300};
  const std::int64_t T = 64;
  const auto offs = validation_offsets(seg, T, 0);
  // (999 / 64) = 15 windows in segment 0, none in 40, (299 / 64) = 4 in segment 2 (starting at 1040).
  ASSERT_EQ(offs.size(), 19u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(offs[static_cast<std::size_t>(i)], i * T);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(offs[static_cast<std::size_t>(15 + i)], 1040 + i * T);
  // Targets (positions off+1 … off+T) never repeat.
  std::set<std::int64_t> targets;
  for (auto o : offs)
    for (std::int64_t j = 1; j <= T; ++j) EXPECT_TRUE(targets.insert(o + j).second);
  EXPECT_EQ(validation_offsets(1000, T, 0), std::vector<std::int64_t>(offs.begin(), offs.begin() + 15));
}

TEST(ValidationWindows, FixedCountIsEvenlySpacedAndSeedFree) {
  const std::vector<std::int64_t> seg = {1000, 40, 300};
  const std::int64_t T = 64;
  // S = 936 + 0 + 236 = 1172 valid starts; window i at valid start floor(i * 1172 / 8).
  const auto offs = validation_offsets(seg, T, 8);
  const std::vector<std::int64_t> want = {0, 146, 293, 439, 586, 732, 879, 1040 + (1025 - 936)};
  EXPECT_EQ(offs, want);
  for (auto o : offs) EXPECT_TRUE(o + T + 1 <= 1000 || (o >= 1040 && o + T + 1 <= 1340)) << o;
  EXPECT_EQ(validation_offsets(seg, T, 8), offs);
  EXPECT_THROW(validation_offsets(std::vector<std::int64_t>{64, 10}, 64, 0), DataError);
  EXPECT_THROW(validation_offsets(1000, 64, -1), DataError);
}

TEST(ValidationWindows, BitsPerByte) {
  EXPECT_DOUBLE_EQ(bits_per_byte(std::log(2.0), 1.0), 1.0);
  EXPECT_NEAR(bits_per_byte(2.2, 1.0), 2.2 / 0.6931471805599453, 1e-12);
  EXPECT_NEAR(bits_per_byte(4.0, 3.5), 4.0 / 0.6931471805599453 / 3.5, 1e-12);
  EXPECT_THROW(bits_per_byte(1.0, 0.0), DataError);
}

}  // namespace
}  // namespace sk::data
