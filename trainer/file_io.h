// file_io.h — the few POSIX file writes the trainer's files share: writing a whole buffer to a
// descriptor (EINTR and short writes handled), and replacing a file atomically.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace sk {

// Writes n bytes to fd; throws sk::Error "<what>: cannot write <path>: <errno text>".
void write_all_fd(int fd, const void* p, std::size_t n, const std::string& path, const char* what);

// Replaces `path` by `bytes`: a temporary file beside it, fsync, rename over it, fsync of the
// folder. A crash leaves the old or the new file, never a mixture. Throws sk::Error.
void replace_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace sk
