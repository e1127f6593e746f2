// file_io.cpp — see file_io.h.
#include "trainer/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "model/core/error.h"

namespace sk {

void write_all_fd(int fd, const void* p, std::size_t n, const std::string& path, const char* what) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    SK_CHECK(w > 0, what, ": cannot write ", path, ": ", std::strerror(errno));
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

void replace_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SK_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  try {
    write_all_fd(fd, bytes.data(), bytes.size(), tmp, "replace_file_atomically");
    SK_CHECK(::fsync(fd) == 0, "cannot sync '", tmp, "': ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(cat("cannot replace '", path, "' by '", tmp, "': ", std::strerror(e)));
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);  // best effort: the rename itself is done
    ::close(dfd);
  }
}

}  // namespace sk
