// data_error.h — the error data/ throws for bad input (missing or too small files, bad sizes).
// data/ depends on nothing else of ours, so it has its own exception type; launch/main.cpp
// reports it like every other user error (one line, exit 1).
#pragma once
#include <stdexcept>
#include <string>

namespace sk::data {

class DataError : public std::runtime_error {
 public:
  explicit DataError(const std::string& m) : std::runtime_error(m) {}
};

}  // namespace sk::data
