// byte_dataset.h — a byte-level token corpus: a text file read through a read-only mmap, one
// token per byte (vocabulary 256, as the reference's enwik8 example), split into train and
// validation ranges.
//
//   ByteDataset ds("enwik8", /*val_fraction=*/0.05);
//   ds.train()  // first 95 % of the bytes;  ds.val()  // the last 5 %
#pragma once
#include <cstdint>
#include <string>

namespace sk::data {

// A contiguous range of tokens (bytes) owned by someone else.
struct TokenSpan {
  const std::uint8_t* data = nullptr;
  std::int64_t size = 0;
  TokenSpan sub(std::int64_t begin, std::int64_t end) const { return {data + begin, end - begin}; }
};

// Read-only memory map of a whole file (POSIX mmap). An empty file maps to an empty span.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws DataError naming the path and errno text
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;

  TokenSpan span() const { return {static_cast<const std::uint8_t*>(addr_), size_}; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;
  std::string path_;
  void* addr_ = nullptr;
  std::int64_t size_ = 0;
};

class ByteDataset {
 public:
  // val_fraction in [0, 1): the last round(size * val_fraction) bytes are the validation split.
  ByteDataset(const std::string& path, double val_fraction);
  TokenSpan all() const { return file_.span(); }
  TokenSpan train() const { return all().sub(0, split_); }
  TokenSpan val() const { return all().sub(split_, all().size); }
  const std::string& path() const { return file_.path(); }
  static constexpr std::int64_t vocab_size = 256;

 private:
  MappedFile file_;
  std::int64_t split_ = 0;
};

}  // namespace sk::data
