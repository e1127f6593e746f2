// error.h — user errors vs internal bugs (style.md §3.6).
//   SK_CHECK(cond, msg...)  bad input (config, files, shapes): throws sk::Error naming what was
//                           expected and what was got.
//   SK_ASSERT(cond, msg...) our own invariants: throws sk::InternalError ("internal error ...").
// Message formatting lives in error.cpp; callers stream any printable values.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sk {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& m) : std::runtime_error(m) {}
};

class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& m) : std::logic_error(m) {}
};

[[noreturn]] void throw_error(const std::string& msg);
[[noreturn]] void throw_internal(const char* file, int line, const char* cond, const std::string& msg);

template <class... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

}  // namespace sk

#define SK_CHECK(cond, ...)                                      \
  do {                                                           \
    if (!(cond)) ::sk::throw_error(::sk::cat(__VA_ARGS__));      \
  } while (0)

#define SK_ASSERT(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) ::sk::throw_internal(__FILE__, __LINE__, #cond, ::sk::cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
