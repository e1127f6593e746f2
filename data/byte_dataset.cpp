// byte_dataset.cpp — mmap of a corpus file and its train/validation split.
#include "data/byte_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

#include "data/data_error.h"

namespace sk::data {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError("cannot open dataset file '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw DataError("cannot stat dataset file '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DataError("dataset path '" + path + "' is not a regular file");
  }
  size_ = static_cast<std::int64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, static_cast<std::size_t>(size_), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw DataError("cannot mmap dataset file '" + path + "': " + std::strerror(e));
    }
    addr_ = p;
    // Sampling reads scattered windows: tell the kernel not to read ahead aggressively. Advice
    // only; failure changes nothing but speed.
    (void)::madvise(addr_, static_cast<std::size_t>(size_), MADV_RANDOM);
  }
  if (::close(fd) != 0) {
    int e = errno;
    release();
    throw DataError("cannot close dataset file '" + path + "': " + std::strerror(e));
  }
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (addr_) ::munmap(addr_, static_cast<std::size_t>(size_));
  addr_ = nullptr;
  size_ = 0;
}

ByteDataset::ByteDataset(const std::string& path, double val_fraction) : file_(path) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw DataError("dataset '" + path + "': val_fraction must be in [0, 1), got " + std::to_string(val_fraction));
  const std::int64_t n = file_.span().size;
  std::int64_t nval = static_cast<std::int64_t>(std::llround(static_cast<double>(n) * val_fraction));
  split_ = n - nval;
}

}  // namespace sk::data
