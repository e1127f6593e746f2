// watchdog.h — no hang, ever: a host thread that ends the job when a blocking communication wait
// makes no progress for `[parallel] timeout_s` (a peer stopped, died without taking the job down,
// or never reached the collective).
//
//   Watchdog::start(300, on_timeout);       // once per process, after MPI is up (launch/)
//   { Watchdog::Scope w("all_reduce"); handle.wait(); }   // every blocking wait (Handle::wait does it)
//
// Each waiting thread registers what it waits for and since when; the watchdog checks twice a
// second and, when one wait is older than the timeout, calls on_timeout with a one-line message
// naming the operation and the time waited ("all_reduce (mpi, 2 ranks) waited 300 s"). The
// launcher's on_timeout prints it with the rank's grid coordinates, aborts NCCL communicators
// (ncclCommAbort, registered with on_abort) so no destructor waits on a stuck stream, and
// MPI_Aborts the job. Legitimately long waits (a checkpoint being written by another rank) raise
// the allowance of their thread with Allowance.
#pragma once
#include <functional>
#include <string>

namespace sk::par {

class Watchdog {
 public:
  // Starts the watchdog thread (timeout_s > 0). A second start replaces the settings.
  static void start(double timeout_s, std::function<void(const std::string& message)> on_timeout);
  static void stop();  // joins the thread (tests; the process exits without it)
  static bool running();
  static double timeout();
  // Something to run before the job is torn down (NCCL: ncclCommAbort); returns its id.
  static int on_abort(std::function<void()> fn);
  static void remove_abort(int id);
  static void run_aborts();  // runs every registered abort once (the on_timeout handler calls it)

  // Marks the calling thread as waiting in `what` for its lifetime (nested scopes: the outermost
  // one's start time counts).
  class Scope {
   public:
    explicit Scope(const char* what);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    bool outer_ = false;
  };
  // Adds `seconds` to the calling thread's timeout for its lifetime.
  class Allowance {
   public:
    explicit Allowance(double seconds);
    ~Allowance();
    Allowance(const Allowance&) = delete;
    Allowance& operator=(const Allowance&) = delete;

   private:
    double seconds_;
  };
};

}  // namespace sk::par
