// lock.h — one run per checkpoint dir: an exclusive advisory lock on <dir>/.lock.
//
//   CheckpointLock lock(cfg.checkpoint.dir);   // throws if another process holds it
//
// The lock is flock(LOCK_EX | LOCK_NB) on <dir>/.lock (the folder is created if needed), held for
// the object's life and released by the kernel when the process ends in any way (kill -9
// included), so a stale lock never blocks a later run. The holder writes "host <name> pid <pid>"
// into the file; a second process gets a one-line sk::Error naming that host and pid. The file is
// left in place (removing it could let two processes lock two different files).
//
// Scope: flock locks work between processes on one machine and, on Linux, on NFS (emulated with
// byte-range locks); a job takes it on the rank that writes checkpoints.
#pragma once
#include <string>

namespace sk {

class CheckpointLock {
 public:
  explicit CheckpointLock(const std::string& dir);
  ~CheckpointLock();
  CheckpointLock(const CheckpointLock&) = delete;
  CheckpointLock& operator=(const CheckpointLock&) = delete;
  const std::string& path() const { return path_; }

  // "host <hostname> pid <pid>" of this process, as written into the lock file.
  static std::string holder_id();

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace sk
