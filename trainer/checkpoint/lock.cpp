// lock.cpp — see lock.h.
#include "trainer/checkpoint/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "model/core/error.h"

namespace sk {

std::string CheckpointLock::holder_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  return cat("host ", host, " pid ", ::getpid());
}

CheckpointLock::CheckpointLock(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SK_CHECK(!ec, "checkpoint.dir '", dir, "': cannot create the folder: ", ec.message());
  path_ = (std::filesystem::path(dir) / ".lock").string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  SK_CHECK(fd_ >= 0, "checkpoint.dir '", dir, "': cannot open the lock file '", path_, "': ", std::strerror(errno));
  int rc;
  do rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    // Who holds it: the holder wrote its id right after locking.
    char buf[512] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string who = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    for (char& c : who)
      if (c == '\n' || c == '\r') c = ' ';
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw Error(cat("checkpoint.dir '", dir, "' is in use by another run (", who.empty() ? "holder unknown" : who,
                      ", lock file ", path_, "): wait for it to end or choose another checkpoint.dir"));
    throw Error(cat("checkpoint.dir '", dir, "': cannot lock '", path_, "': ", std::strerror(err)));
  }
  const std::string id = holder_id() + "\n";
  const bool written =
      ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, id.data(), id.size(), 0) == static_cast<ssize_t>(id.size());
  if (!written) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw Error(cat("checkpoint.dir '", dir, "': cannot write the lock file '", path_, "': ", std::strerror(err)));
  }
}

CheckpointLock::~CheckpointLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace sk
