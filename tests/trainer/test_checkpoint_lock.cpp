// CheckpointLock: one holder per checkpoint dir, between descriptors of one process and between
// processes; the refusal names the holder's host and pid; the lock dies with its holder (kill -9).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "model/core/error.h"
#include "test_train_util.h"
#include "trainer/checkpoint/lock.h"

namespace sk {
namespace {

std::string refusal(const std::string& dir) {
  try {
    CheckpointLock second(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointLock, SecondHolderInTheSameProcessIsRefusedNamingTheHolder) {
  const std::string dir = test::fresh_dir("lock_same") + "/ck";  // created by the lock
  {
    CheckpointLock first(dir);
    EXPECT_TRUE(std::filesystem::exists(dir + "/.lock"));
    std::ifstream in(first.path());
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(content, CheckpointLock::holder_id() + "\n");
    const std::string m = refusal(dir);
    EXPECT_NE(m.find("is in use by another run"), std::string::npos) << m;
    EXPECT_NE(m.find(CheckpointLock::holder_id()), std::string::npos) << m;  // host and pid
    EXPECT_NE(m.find(dir), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  // Released with the object: the next one takes it.
  EXPECT_EQ(refusal(dir), "");
}

// A child process holds the lock: this process is refused with the child's pid; after the child
// is killed with SIGKILL the lock is free again (the kernel releases it).
TEST(CheckpointLock, AcrossProcessesAndReleasedByKill9) {
  const std::string dir = test::fresh_dir("lock_fork");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    try {
      CheckpointLock mine(dir);
      const char ok = 'k';
      (void)!::write(ready[1], &ok, 1);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(3);
    }
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the child could not take the lock";
  ::close(ready[0]);
  const std::string m = refusal(dir);
  EXPECT_NE(m.find("pid " + std::to_string(child)), std::string::npos) << m;
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_NE(m.find(std::string("host ") + host), std::string::npos) << m;
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(refusal(dir), "") << "the lock outlived its killed holder";
  CheckpointLock now(dir);
  std::ifstream in(now.path());
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, CheckpointLock::holder_id() + "\n") << "the new holder's id replaces the old one";
}

TEST(CheckpointLock, UnusableDirIsAnError) {
  const std::string dir = test::fresh_dir("lock_file");
  std::ofstream(dir + "/plain") << "x";
  EXPECT_THROW(CheckpointLock(dir + "/plain"), Error);  // a file, not a folder
}

}  // namespace
}  // namespace sk
