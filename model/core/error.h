// error.h — user errors vs internal bugs (style.md §3.6), and the exit code each error ends the
// `sinkhorn` process with (README "Failure behaviour").
//   SK_CHECK(cond, msg...)        bad input found while running (files, shapes): throws sk::Error
//                                 (exit 1) naming what was expected and what was got.
//   SK_CHECK_CONFIG(cond, msg...) the config, the command line or a file they name is unusable,
//                                 found before training starts: throws sk::ConfigError (exit 2).
//   SK_ASSERT(cond, msg...)       our own invariants: throws sk::InternalError ("internal error ...").
// Every sk::Error carries its exit code; launch/main.cpp is the only catcher and exits with it.
// Message formatting lives in error.cpp; callers stream any printable values.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sk {

// Exit codes of `sinkhorn` (documented in README.md "Failure behaviour").
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,   // a runtime failure: I/O, MPI, CUDA, out of memory, a damaged checkpoint, a bug
  kExitUsage = 2,     // config / command line / a file they name is unusable; nothing was written
  kExitDiverged = 3,  // training diverged (too many consecutive non-finite steps); `latest` is the last good one
  kExitStopped = 4,   // stopped by a signal (SIGTERM, SIGINT, SIGUSR1) after saving a checkpoint
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& m, int exit_code = kExitFailure) : std::runtime_error(m), exit_code_(exit_code) {}
  int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

// Exit 2: thrown for a bad config key or value, a bad command-line option, or a named file
// (data, weights, init_from, reference case) that is missing or malformed — always before
// anything is written.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& m) : Error(m, kExitUsage) {}
};

// Exit 3: the trainer gives up on a diverged run (every rank throws it at the same step).
class DivergedError : public Error {
 public:
  explicit DivergedError(const std::string& m) : Error(m, kExitDiverged) {}
};

// Exit 4: the run ended early on a signal, after its checkpoint was written. Not an error for the
// user: main prints "sinkhorn: stopped: <message>".
class StoppedError : public Error {
 public:
  explicit StoppedError(const std::string& m) : Error(m, kExitStopped) {}
};

class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& m) : std::logic_error(m) {}
};

[[noreturn]] void throw_error(const std::string& msg);
[[noreturn]] void throw_config_error(const std::string& msg);
[[noreturn]] void throw_internal(const char* file, int line, const char* cond, const std::string& msg);
// Throws `prefix + e.what()` with e's exit code: adds context to an error without changing what
// it means (e.g. a ConfigError from a weights file stays exit 2 under "checkpoint.init_from ...: ").
[[noreturn]] void rethrow_with_context(const Error& e, const std::string& prefix);
// For a caller that knows the failing operation read a file the user named (weights, init_from, a
// reference case's files): a plain sk::Error from it (a bad file) becomes a ConfigError (exit 2),
// `prefix` added; errors of other kinds (a derived class such as CudaError, or one already
// classified) keep their code, as rethrow_with_context.
[[noreturn]] void rethrow_as_config_error(const Error& e, const std::string& prefix);

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

#define SK_CHECK_CONFIG(cond, ...)                                    \
  do {                                                                \
    if (!(cond)) ::sk::throw_config_error(::sk::cat(__VA_ARGS__));    \
  } while (0)

#define SK_ASSERT(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) ::sk::throw_internal(__FILE__, __LINE__, #cond, ::sk::cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
