// token_corpus.cpp — shard formats, checks, views and fingerprints; see token_corpus.h.
#include "data/token_corpus.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "data/data_error.h"

namespace sk::data {
namespace {

constexpr std::int32_t kMagicU16 = 20240520;  // llm.c GPT-2 shards: version 1, uint16 tokens
constexpr std::int32_t kMagicU32 = 20240801;  // llm.c LLaMA-3 shards: version 7, uint32 tokens
constexpr std::int64_t kLlmcHeader = 256 * 4;
constexpr std::int64_t kFingerprintBytes = 1 << 20;

std::string str(std::int64_t v) { return std::to_string(v); }

std::int32_t le_i32(const std::uint8_t* p) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                   static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24);
}

// ---- token access by dtype (little-endian host, as every platform we build for) ----
template <class T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void convert(const std::uint8_t* src, std::int64_t n, std::int64_t* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<std::int64_t>(load<T>(src + i * sizeof(T)));
}

void convert_tokens(TokenDType d, const std::uint8_t* src, std::int64_t n, std::int64_t* out) {
  switch (d) {
    case TokenDType::u8: convert<std::uint8_t>(src, n, out); return;
    case TokenDType::u16: convert<std::uint16_t>(src, n, out); return;
    case TokenDType::u32: convert<std::uint32_t>(src, n, out); return;
    case TokenDType::i32: convert<std::int32_t>(src, n, out); return;
  }
}

// Largest and smallest id of n tokens: a plain reduction the compiler vectorises (aligned typed
// loads when the data is aligned, which mmap + every header size here guarantee).
template <class T>
void min_max(const std::uint8_t* src, std::int64_t n, std::int64_t& lo, std::int64_t& hi) {
  T mn = std::numeric_limits<T>::max(), mx = std::numeric_limits<T>::lowest();
  if (reinterpret_cast<std::uintptr_t>(src) % alignof(T) == 0) {
    const T* p = reinterpret_cast<const T*>(src);
    for (std::int64_t i = 0; i < n; ++i) {
      mn = p[i] < mn ? p[i] : mn;
      mx = p[i] > mx ? p[i] : mx;
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) {
      const T v = load<T>(src + i * sizeof(T));
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
  }
  lo = n ? static_cast<std::int64_t>(mn) : 0;
  hi = n ? static_cast<std::int64_t>(mx) : -1;
}

void token_range(TokenDType d, const std::uint8_t* src, std::int64_t n, std::int64_t& lo, std::int64_t& hi) {
  switch (d) {
    case TokenDType::u8: min_max<std::uint8_t>(src, n, lo, hi); return;
    case TokenDType::u16: min_max<std::uint16_t>(src, n, lo, hi); return;
    case TokenDType::u32: min_max<std::uint32_t>(src, n, lo, hi); return;
    case TokenDType::i32: min_max<std::int32_t>(src, n, lo, hi); return;
  }
}

std::uint32_t crc_of(const std::uint8_t* p, std::int64_t n) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const auto k = static_cast<uInt>(std::min<std::int64_t>(n, 1 << 30));
    c = ::crc32(c, p, k);
    p += k;
    n -= k;
  }
  return static_cast<std::uint32_t>(c);
}

// ---- .npy header: {'descr': '<u2', 'fortran_order': False, 'shape': (N,), } ----
struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<std::int64_t> shape;
  std::int64_t data_offset = 0;
};

NpyHeader parse_npy(const std::string& path, const std::uint8_t* p, std::int64_t size) {
  auto fail = [&](const std::string& why) -> DataError {
    return DataError("token shard '" + path + "': not a valid .npy file: " + why);
  };
  if (size < 10) throw fail("shorter than the 10-byte preamble");
  const int major = p[6];
  std::int64_t hlen = 0, start = 0;
  if (major == 1) {
    hlen = p[8] | (p[9] << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw fail("shorter than the 12-byte preamble");
    hlen = static_cast<std::uint32_t>(le_i32(p + 8));
    start = 12;
  } else {
    throw fail("format version " + str(major) + "." + str(p[7]) + " at byte offset 6 (supported: 1.x, 2.x, 3.x)");
  }
  if (start + hlen > size) throw fail("header of " + str(hlen) + " bytes runs past the end of the file");
  const std::string h(reinterpret_cast<const char*>(p + start), static_cast<std::size_t>(hlen));
  auto value_at = [&](const std::string& key) -> std::size_t {
    std::size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) k = h.find("\"" + key + "\"");
    if (k == std::string::npos) throw fail("header has no '" + key + "' (header: " + h + ")");
    std::size_t c = h.find(':', k);
    if (c == std::string::npos) throw fail("header is malformed near '" + key + "'");
    ++c;
    while (c < h.size() && h[c] == ' ') ++c;
    return c;
  };
  NpyHeader r;
  r.data_offset = start + hlen;
  {
    std::size_t c = value_at("descr");
    if (c >= h.size() || (h[c] != '\'' && h[c] != '"')) throw fail("'descr' is not a string");
    const std::size_t e = h.find(h[c], c + 1);
    if (e == std::string::npos) throw fail("'descr' is not a string");
    r.descr = h.substr(c + 1, e - c - 1);
  }
  {
    std::size_t c = value_at("fortran_order");
    if (h.compare(c, 4, "True") == 0) r.fortran = true;
    else if (h.compare(c, 5, "False") != 0) throw fail("'fortran_order' is neither True nor False");
  }
  {
    std::size_t c = value_at("shape");
    if (c >= h.size() || h[c] != '(') throw fail("'shape' is not a tuple");
    const std::size_t e = h.find(')', c);
    if (e == std::string::npos) throw fail("'shape' is not a tuple");
    std::stringstream ss(h.substr(c + 1, e - c - 1));
    std::string item;
    while (std::getline(ss, item, ',')) {
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (item.empty()) continue;
      char* end = nullptr;
      const long long v = std::strtoll(item.c_str(), &end, 10);
      if (*end != '\0' && *end != 'L') throw fail("'shape' entry '" + item + "' is not an integer");
      r.shape.push_back(v);
    }
  }
  return r;
}

bool is_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

}  // namespace

const char* token_dtype_name(TokenDType d) {
  switch (d) {
    case TokenDType::u8: return "uint8";
    case TokenDType::u16: return "uint16";
    case TokenDType::u32: return "uint32";
    case TokenDType::i32: return "int32";
  }
  return "?";
}

int token_dtype_size(TokenDType d) {
  switch (d) {
    case TokenDType::u8: return 1;
    case TokenDType::u16: return 2;
    case TokenDType::u32:
    case TokenDType::i32: return 4;
  }
  return 0;
}

const char* shard_format_name(ShardFormat f) {
  switch (f) {
    case ShardFormat::bytes: return "bytes";
    case ShardFormat::llmc: return "llm.c";
    case ShardFormat::raw_u16: return "raw_u16";
    case ShardFormat::npy: return "npy";
  }
  return "?";
}

std::vector<std::string> expand_paths(const std::vector<std::string>& paths, const std::string& what) {
  if (paths.empty()) throw DataError(what + ": no file given");
  std::vector<std::string> out;
  for (const auto& p : paths) {
    if (!is_glob(p)) {
      out.push_back(p);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(p.c_str(), 0, nullptr, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
      ::globfree(&g);
      throw DataError(what + " '" + p + "': the pattern matches no file");
    }
    if (rc != 0) {
      ::globfree(&g);
      throw DataError(what + " '" + p + "': cannot expand the pattern (glob error " + str(rc) + ")");
    }
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
  }
  return out;
}

TokenDType write_llmc_shard(const std::string& path, const std::int64_t* tokens, std::int64_t n,
                            std::int64_t vocab_size) {
  if (n < 0 || n > std::numeric_limits<std::int32_t>::max())
    throw DataError("shard '" + path + "': " + str(n) + " tokens do not fit an llm.c header (at most 2^31 - 1)");
  const bool u16 = vocab_size <= 65536;
  const int w = u16 ? 2 : 4;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(kLlmcHeader + n * w), 0);
  auto put32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) buf[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  put32(0, static_cast<std::uint32_t>(u16 ? kMagicU16 : kMagicU32));
  put32(4, u16 ? 1u : 7u);
  put32(8, static_cast<std::uint32_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t v = tokens[i];
    if (v < 0 || v >= (u16 ? 65536 : (std::int64_t{1} << 32)) || (vocab_size > 0 && v >= vocab_size))
      throw DataError("shard '" + path + "': token " + str(i) + " is " + str(v) + ", outside the vocabulary of " +
                      str(vocab_size));
    const auto at = static_cast<std::size_t>(kLlmcHeader + i * w);
    for (int b = 0; b < w; ++b) buf[at + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * b));
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw DataError("shard '" + path + "': cannot create '" + tmp + "': " + std::strerror(errno));
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t k = ::write(fd, buf.data() + done, buf.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw DataError("shard '" + path + "': cannot write '" + tmp + "': " + std::strerror(e));
    }
    done += static_cast<std::size_t>(k);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw DataError("shard '" + path + "': cannot finish writing: " + std::strerror(e));
  }
  return u16 ? TokenDType::u16 : TokenDType::u32;
}

namespace {

// Format, dtype and token range of a mapped shard; throws DataError naming the file.
ShardInfo describe(const std::string& path, TokenSpan raw) {
  ShardInfo s;
  s.path = path;
  s.file_bytes = raw.size;
  const std::uint8_t* p = raw.data;
  const std::int64_t size = raw.size;
  const std::string where = "token shard '" + path + "'";
  if (size >= 6 && std::memcmp(p, "\x93NUMPY", 6) == 0) {
    const NpyHeader h = parse_npy(path, p, size);
    s.format = ShardFormat::npy;
    if (h.descr == "<u2" || h.descr == "=u2") s.dtype = TokenDType::u16;
    else if (h.descr == "<u4" || h.descr == "=u4") s.dtype = TokenDType::u32;
    else if (h.descr == "<i4" || h.descr == "=i4") s.dtype = TokenDType::i32;
    else if (h.descr == "|u1") s.dtype = TokenDType::u8;
    else
      throw DataError(where + ": .npy dtype '" + h.descr +
                      "' is not a token array (expected little-endian '<u2', '<u4', '<i4' or '|u1')");
    if (h.shape.size() != 1) {
      std::string sh;
      for (auto d : h.shape) sh += (sh.empty() ? "" : ", ") + str(d);
      throw DataError(where + ": .npy array has shape (" + sh + "); a token shard is 1-D");
    }
    s.tokens = h.shape[0];
    s.data_offset = h.data_offset;
    const std::int64_t want = s.data_offset + s.tokens * token_dtype_size(s.dtype);
    if (size != want)
      throw DataError(where + ": .npy header says " + str(s.tokens) + " " + token_dtype_name(s.dtype) +
                      " tokens from byte offset " + str(s.data_offset) + " (" + str(want) + " bytes) but the file has " +
                      str(size) + " bytes (" + (size < want ? "truncated" : "trailing bytes") + ")");
    return s;
  }
  if (size >= kLlmcHeader) {
    const std::int32_t magic = le_i32(p), version = le_i32(p + 4), count = le_i32(p + 8);
    if (magic == kMagicU16 || magic == kMagicU32) {
      const bool u16 = magic == kMagicU16;
      const std::int32_t want_version = u16 ? 1 : 7;
      if (version != want_version)
        throw DataError(where + ": llm.c header at byte offset 4: version " + str(version) + " with magic " +
                        str(magic) + " (expected version " + str(want_version) + ": " + (u16 ? "uint16" : "uint32") +
                        " tokens)");
      s.format = ShardFormat::llmc;
      s.dtype = u16 ? TokenDType::u16 : TokenDType::u32;
      if (count < 0) throw DataError(where + ": llm.c header at byte offset 8: negative token count " + str(count));
      s.tokens = count;
      s.data_offset = kLlmcHeader;
      const std::int64_t want = kLlmcHeader + s.tokens * token_dtype_size(s.dtype);
      if (size != want)
        throw DataError(where + ": llm.c header says " + str(s.tokens) + " " + token_dtype_name(s.dtype) +
                        " tokens (" + str(want) + " bytes) but the file has " + str(size) + " bytes (" +
                        (size < want ? "truncated at byte offset " + str(size) : "trailing bytes") + ")");
      return s;
    }
    // A 256-int32 header whose count matches the file for 2- or 4-byte tokens but whose magic is
    // unknown: an llm.c-style shard we cannot read, not raw tokens.
    if (count > 0 && version >= 0 && version < 1000 &&
        (kLlmcHeader + 2 * static_cast<std::int64_t>(count) == size ||
         kLlmcHeader + 4 * static_cast<std::int64_t>(count) == size))
      throw DataError(where + ": llm.c-style header at byte offset 0 has magic " + str(magic) + " (expected " +
                      str(kMagicU16) + " with version 1 for uint16 tokens, or " + str(kMagicU32) +
                      " with version 7 for uint32)");
  }
  s.format = ShardFormat::raw_u16;
  s.dtype = TokenDType::u16;
  if (size % 2 != 0)
    throw DataError(where + ": " + str(size) +
                    " bytes is an odd size for raw uint16 tokens (no llm.c or .npy header found; last token truncated "
                    "at byte offset " + str(size - 1) + ")");
  s.tokens = size / 2;
  s.data_offset = 0;
  return s;
}

// Applies the id and size checks to one described shard.
void check_shard(ShardInfo& s, const std::uint8_t* base, const ShardChecks& checks) {
  const std::string where = "token shard '" + s.path + "'";
  const std::uint8_t* data = base + s.data_offset;
  const int w = token_dtype_size(s.dtype);
  std::int64_t lo = 0, hi = -1;
  token_range(s.dtype, data, s.tokens, lo, hi);
  s.max_token = hi;
  const bool too_big = checks.vocab_size > 0 && hi >= checks.vocab_size;
  if (lo < 0 || too_big) {
    std::vector<std::int64_t> buf(1 << 16);
    for (std::int64_t i = 0; i < s.tokens; i += static_cast<std::int64_t>(buf.size())) {
      const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(buf.size()), s.tokens - i);
      convert_tokens(s.dtype, data + i * w, n, buf.data());
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t v = buf[static_cast<std::size_t>(j)];
        if (v < 0 || (checks.vocab_size > 0 && v >= checks.vocab_size))
          throw DataError(where + ": token " + str(i + j) + " at byte offset " + str(s.data_offset + (i + j) * w) +
                          " is " + str(v) +
                          (v < 0 ? ", a negative id" : ", not below the vocabulary size (" + checks.vocab_name +
                                                           " = " + str(checks.vocab_size) + ")"));
      }
    }
  }
  if (checks.min_tokens > 0 && s.tokens < checks.min_tokens)
    throw DataError(where + ": " + str(s.tokens) + " tokens, fewer than one window of seq_len + 1 = " +
                    str(checks.min_tokens) + " (windows do not cross shard boundaries)");
}

}  // namespace

TokenCorpus TokenCorpus::open_bytes(const std::string& path) {
  TokenCorpus c;
  auto f = std::make_shared<MappedFile>(path);
  ShardInfo s;
  s.path = path;
  s.format = ShardFormat::bytes;
  s.dtype = TokenDType::u8;
  s.tokens = f->span().size;
  s.file_bytes = f->span().size;
  c.info_.push_back(s);
  c.files_.push_back(std::move(f));
  c.begin_.push_back(0);
  c.total_ = s.tokens;
  return c;
}

TokenCorpus TokenCorpus::open_shards(const std::vector<std::string>& files, const ShardChecks& checks) {
  TokenCorpus c;
  for (const auto& path : files) {
    auto f = std::make_shared<MappedFile>(path);
    const TokenSpan raw = f->span();
    ShardInfo s = describe(path, raw);
    // One sequential pass for the id check: read ahead while scanning, random access afterwards.
    if (raw.size > 0) (void)::madvise(const_cast<std::uint8_t*>(raw.data), static_cast<std::size_t>(raw.size), MADV_SEQUENTIAL);
    check_shard(s, raw.data, checks);
    if (raw.size > 0) (void)::madvise(const_cast<std::uint8_t*>(raw.data), static_cast<std::size_t>(raw.size), MADV_RANDOM);
    c.begin_.push_back(c.total_);
    c.total_ += s.tokens;
    c.info_.push_back(std::move(s));
    c.files_.push_back(std::move(f));
  }
  return c;
}

std::vector<std::int64_t> TokenCorpus::shard_sizes() const {
  std::vector<std::int64_t> v;
  for (const auto& s : info_) v.push_back(s.tokens);
  return v;
}

void TokenCorpus::read(std::int64_t offset, std::int64_t n, std::int64_t* out) const {
  if (offset < 0 || n < 0 || offset + n > total_)
    throw DataError("token corpus: tokens [" + str(offset) + ", " + str(offset + n) + ") run outside the corpus of " +
                    str(total_) + " tokens");
  // The shard holding `offset`, then forward across shards.
  auto k = static_cast<std::size_t>(std::upper_bound(begin_.begin(), begin_.end(), offset) - begin_.begin() - 1);
  while (n > 0) {
    while (offset - begin_[k] >= info_[k].tokens) ++k;  // skip empty shards
    const ShardInfo& s = info_[k];
    const std::int64_t local = offset - begin_[k];
    const std::int64_t m = std::min(n, s.tokens - local);
    const std::uint8_t* src = files_[k]->span().data + s.data_offset + local * token_dtype_size(s.dtype);
    convert_tokens(s.dtype, src, m, out);
    out += m;
    offset += m;
    n -= m;
  }
}

std::vector<ShardFingerprint> TokenCorpus::fingerprint(const std::string& role) const {
  std::vector<ShardFingerprint> v;
  for (std::size_t k = 0; k < info_.size(); ++k) {
    const ShardInfo& s = info_[k];
    const TokenSpan raw = files_[k]->span();
    ShardFingerprint f;
    f.role = role;
    f.path = s.path;
    f.format = shard_format_name(s.format);
    f.dtype = token_dtype_name(s.dtype);
    f.tokens = s.tokens;
    f.file_bytes = raw.size;
    const std::int64_t m = std::min(raw.size, kFingerprintBytes);
    f.crc_head = crc_of(raw.data, m);
    f.crc_tail = crc_of(raw.data + (raw.size - m), m);
    v.push_back(std::move(f));
  }
  return v;
}

TokenSpan TokenCorpus::bytes() const {
  if (!is_bytes()) throw DataError("token corpus: bytes() of a corpus of token shards (only format = \"bytes\")");
  return files_[0]->span();
}

// ---- views ----

CorpusView::CorpusView(std::shared_ptr<const TokenCorpus> corpus, std::int64_t begin, std::int64_t end)
    : corpus_(std::move(corpus)), begin_(begin), end_(end) {
  if (!corpus_ || begin < 0 || end < begin || end > corpus_->size())
    throw DataError("corpus view: range [" + str(begin) + ", " + str(end) + ") is outside the corpus");
  for (std::size_t k = 0; k < corpus_->shards().size(); ++k) {
    const std::int64_t b = std::max(begin, corpus_->shard_begin(k));
    const std::int64_t e = std::min(end, corpus_->shard_begin(k) + corpus_->shards()[k].tokens);
    if (e <= b) continue;
    seg_begin_.push_back(b - begin);
    segments_.push_back(e - b);
    seg_shard_.push_back(k);
  }
  if (segments_.empty()) {  // an empty view still has one (empty) segment
    seg_begin_.push_back(0);
    segments_.push_back(0);
    seg_shard_.push_back(0);
  }
}

void CorpusView::read(std::int64_t offset, std::int64_t n, std::int64_t* out) const {
  if (offset < 0 || n < 0 || offset + n > size())
    throw DataError("batch: window [" + str(offset) + ", " + str(offset + n) + ") runs outside the corpus of " +
                    str(size()) + " tokens");
  const auto k = static_cast<std::size_t>(std::upper_bound(seg_begin_.begin(), seg_begin_.end(), offset) -
                                          seg_begin_.begin() - 1);
  if (offset + n > seg_begin_[k] + segments_[k])
    throw DataError("batch: window [" + str(offset) + ", " + str(offset + n) + ") crosses the end of shard '" +
                    corpus_->shards()[seg_shard_[k]].path + "' at " +
                    str(seg_begin_[k] + segments_[k]) + " (windows stay inside one shard)");
  corpus_->read(begin_ + offset, n, out);
}

std::vector<std::int64_t> CorpusView::head(std::int64_t n) const {
  const std::int64_t m = std::min({n, segments_[0], size()});
  std::vector<std::int64_t> out(static_cast<std::size_t>(std::max<std::int64_t>(m, 0)));
  if (m > 0) read(0, m, out.data());
  return out;
}

TokenSpan CorpusView::bytes() const { return corpus_->bytes().sub(begin_, end_); }

// ---- dataset ----

Dataset::Dataset(const DatasetSpec& spec) : spec_(spec) {
  if (!(spec.val_fraction >= 0.0 && spec.val_fraction < 1.0))
    throw DataError("data: val_fraction must be in [0, 1), got " + std::to_string(spec.val_fraction));
  if (spec.format == "bytes") {
    if (spec.paths.size() != 1)
      throw DataError("data: format \"bytes\" reads exactly one text file, got " + str(static_cast<std::int64_t>(spec.paths.size())) +
                      " paths (use format = \"tokens\" for shards)");
    if (!spec.val_paths.empty()) throw DataError("data: val_path needs format = \"tokens\"");
    if (spec.vocab_size > 0 && spec.vocab_size < 256)
      throw DataError("data '" + spec.paths[0] + "': byte tokens need model.num_tokens >= 256, got " + str(spec.vocab_size));
    corpus_ = std::make_shared<TokenCorpus>(TokenCorpus::open_bytes(spec.paths[0]));
  } else if (spec.format == "tokens") {
    const ShardChecks checks{spec.vocab_size, spec.seq_len > 0 ? spec.seq_len + 1 : 0, "model.num_tokens"};
    corpus_ = std::make_shared<TokenCorpus>(TokenCorpus::open_shards(expand_paths(spec.paths, "data.path"), checks));
    if (!spec.val_paths.empty())
      val_corpus_ =
          std::make_shared<TokenCorpus>(TokenCorpus::open_shards(expand_paths(spec.val_paths, "data.val_path"), checks));
  } else {
    throw DataError("data: unknown format \"" + spec.format + "\" (expected \"bytes\" or \"tokens\")");
  }
  const std::int64_t n = corpus_->size();
  if (val_corpus_) {
    train_ = CorpusView(corpus_, 0, n);
    val_ = CorpusView(val_corpus_, 0, val_corpus_->size());
  } else {
    const std::int64_t nval = static_cast<std::int64_t>(std::llround(static_cast<double>(n) * spec.val_fraction));
    train_ = CorpusView(corpus_, 0, n - nval);
    val_ = CorpusView(corpus_, n - nval, n);
  }
}

DataFingerprint Dataset::fingerprint() const {
  DataFingerprint f;
  f.format = spec_.format;
  f.val_fraction = val_corpus_ ? 0.0 : spec_.val_fraction;
  f.shards = corpus_->fingerprint("train");
  if (val_corpus_) {
    auto v = val_corpus_->fingerprint("val");
    f.shards.insert(f.shards.end(), v.begin(), v.end());
  }
  return f;
}

void check_same_data(const DataFingerprint& saved, const DataFingerprint& cur) {
  const std::string pre = "data changed since the checkpoint: ";
  if (saved.format != cur.format)
    throw DataError(pre + "it was trained with data.format = \"" + saved.format + "\", the config says \"" +
                    cur.format + "\"");
  if (saved.val_fraction != cur.val_fraction)
    throw DataError(pre + "data.val_fraction was " + std::to_string(saved.val_fraction) + ", now " +
                    std::to_string(cur.val_fraction) + " (the training split would differ)");
  const std::size_t n = std::min(saved.shards.size(), cur.shards.size());
  for (std::size_t i = 0; i < n; ++i) {
    const ShardFingerprint& a = saved.shards[i];
    const ShardFingerprint& b = cur.shards[i];
    const std::string which = b.role + " shard " + str(static_cast<std::int64_t>(i)) + " '" + b.path + "'" +
                              (a.path != b.path ? " (the checkpoint's was '" + a.path + "')" : "");
    if (a.role != b.role)
      throw DataError(pre + which + " is a " + b.role + " shard, the checkpoint's was a " + a.role + " shard");
    if (a.format != b.format || a.dtype != b.dtype)
      throw DataError(pre + which + " is " + b.format + " " + b.dtype + ", the checkpoint's was " + a.format + " " +
                      a.dtype);
    if (a.tokens != b.tokens || a.file_bytes != b.file_bytes)
      throw DataError(pre + which + " has " + str(b.tokens) + " tokens (" + str(b.file_bytes) +
                      " bytes), the checkpoint's had " + str(a.tokens) + " (" + str(a.file_bytes) + " bytes)");
    if (a.crc_head != b.crc_head || a.crc_tail != b.crc_tail)
      throw DataError(pre + which + " has other content (CRC-32 of its first/last MiB differs)");
  }
  if (saved.shards.size() != cur.shards.size()) {
    const bool more = cur.shards.size() > saved.shards.size();
    const ShardFingerprint& extra = more ? cur.shards[n] : saved.shards[n];
    throw DataError(pre + "the checkpoint was trained on " + str(static_cast<std::int64_t>(saved.shards.size())) +
                    " shards, the config gives " + str(static_cast<std::int64_t>(cur.shards.size())) + " (" +
                    (more ? "new: '" : "missing: '") + extra.path + "')");
  }
}

}  // namespace sk::data
