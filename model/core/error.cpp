#include "error.h"

#include <typeinfo>

namespace sk {

void throw_error(const std::string& msg) { throw Error(msg); }

void throw_config_error(const std::string& msg) { throw ConfigError(msg); }

void throw_internal(const char* file, int line, const char* cond, const std::string& msg) {
  std::ostringstream os;
  os << "internal error at " << file << ":" << line << ": assertion '" << cond << "' failed";
  if (!msg.empty()) os << ": " << msg;
  throw InternalError(os.str());
}

void rethrow_with_context(const Error& e, const std::string& prefix) {
  const std::string m = prefix + e.what();
  switch (e.exit_code()) {
    case kExitUsage: throw ConfigError(m);
    case kExitDiverged: throw DivergedError(m);
    case kExitStopped: throw StoppedError(m);
    default: throw Error(m, e.exit_code());
  }
}

void rethrow_as_config_error(const Error& e, const std::string& prefix) {
  if (typeid(e) == typeid(Error) && e.exit_code() == kExitFailure) throw ConfigError(prefix + e.what());
  rethrow_with_context(e, prefix);
}

}  // namespace sk
