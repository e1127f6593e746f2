// test_util.h — helpers of the data / weights / CLI tests. Tests that check our readers and
// writers against an independent implementation run Python (numpy, zlib) in a child process; the
// interpreter is the first of $PYTHON, python3, /usr/bin/python3 that imports numpy (as
// tests/tools/run_reference_case.sh picks it).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace sk::test {

inline const std::string& python_with_numpy() {
  static const std::string py = [] {
    std::string cands[3] = {std::getenv("PYTHON") ? std::getenv("PYTHON") : "", "python3", "/usr/bin/python3"};
    for (const auto& c : cands)
      if (!c.empty() && std::system((c + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) return c;
    return std::string();
  }();
  return py;
}

// A fresh temporary folder, removed (with its contents) at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/sk_test_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path = p ? p : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// Runs `script` with the numpy Python in `cwd`; returns its stdout. Fails the test on a non-zero exit.
inline std::string run_python(const std::string& script, const std::filesystem::path& cwd) {
  const std::string& py = python_with_numpy();
  EXPECT_FALSE(py.empty()) << "no python3 with numpy (install python3-numpy: launch/scripts/setup.sh)";
  const std::string file = (cwd / "script.py").string(), out = (cwd / "script.out").string();
  std::ofstream(file) << script;
  const std::string cmd = "cd '" + cwd.string() + "' && " + py + " '" + file + "' > '" + out + "'";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << "python failed: " << script;
  std::ifstream in(out);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The message of the E that f throws, or "(no error)".
template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace sk::test
