// stop_signal.h — a graceful stop on SIGTERM, SIGINT or SIGUSR1 (what Slurm sends before a time
// limit or a preemption; README "Failure behaviour").
//
//   StopSignals guard;              // installs the handlers for the guard's life (launch/cli.cpp)
//   if (int sig = stop_requested()) // polled by the trainer once per step
//
// The first of these signals only records its number (the handler is async-signal-safe: an
// atomic store and one write(2) of a notice to stderr); the trainer agrees on it with every rank
// at the end of the step, writes a checkpoint and exits with kExitStopped (4). A second signal
// while the first is pending ends the process at once with 128 + signal, like the default action
// would (nothing half-written becomes `latest`: checkpoints are published by an atomic rename).
#pragma once

namespace sk {

class StopSignals {
 public:
  StopSignals();   // installs the handlers (restoring the previous ones on destruction)
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

// The number of the first stop signal received since the handlers were installed, 0 for none.
int stop_requested();
// "SIGTERM", "SIGINT", "SIGUSR1" or "signal N".
const char* stop_signal_name(int sig);
// Forgets a pending signal (tests).
void clear_stop_request();

}  // namespace sk
