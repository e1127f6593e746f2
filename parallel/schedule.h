// schedule.h — pipeline schedules as pure functions (no processes, no model): what one stage does,
// in order, to run M micro-batches through P stages, forward then backward.
//
// A stage's program is a list of steps. A step is one compute action (forward / backward of a
// micro-batch) or a group of transfers that are posted together and waited on together (MPI
// Isend/Irecv + wait, or ncclGroupStart / End). Transfers move one micro-batch's boundary tensors:
//   send_act(m)  -> next stage's recv_act(m)      activations (stage s to s + 1)
//   send_grad(m) -> previous stage's recv_grad(m) gradients (stage s to s - 1), plus the rebuilt
//                   inputs of a reversible stage
//
// Schedules (P stages, M micro-batches, stage s = 0 … P-1):
//   gpipe   all forwards 0 … M-1, then all backwards 0 … M-1. Up to M micro-batches in flight.
//   1f1b    (PipeDream-flush, Megatron's non-interleaved schedule) W = min(P - s - 1, M) warm-up
//           forwards, then M - W rounds of one forward and one backward, then W cool-down
//           backwards. At most P - s micro-batches in flight on stage s. In the steady state the
//           send of an activation and the receive of a gradient (and the send of a gradient and
//           the receive of the next activation) are grouped, so that blocking transfers cannot
//           deadlock.
// Both run every micro-batch forward and then backward exactly once per stage, in micro-batch
// order, and both idle each stage for the same bubble, (P - 1) / (M + P - 1) of the step when a
// forward and a backward take the same time on every stage.
//
// simulate() runs the programs of all P stages against each other with rendezvous semantics (a
// transfer completes only once both ends have posted it; a group completes when all its
// transfers have), advancing a clock per stage by given compute times: it finds deadlocks and
// measures the bubble. The tests use it; it is cheap enough to check a layout at start-up.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sk::par {

enum class ScheduleKind { gpipe, one_f_one_b };
const char* schedule_name(ScheduleKind k);      // "gpipe" | "1f1b"
ScheduleKind parse_schedule(const std::string& s);  // throws sk::Error naming the value

enum class Op : std::uint8_t { forward, backward, send_act, recv_act, send_grad, recv_grad };
const char* op_name(Op op);

struct Action {
  Op op = Op::forward;
  int micro = 0;
  bool operator==(const Action&) const = default;
};

struct Step {
  std::vector<Action> actions;  // one compute action, or >= 1 transfers
  bool transfers() const { return !actions.empty() && actions[0].op != Op::forward && actions[0].op != Op::backward; }
};
using Program = std::vector<Step>;

// The program of `stage` (0-based) of `stages` for `micro_batches` micro-batches. Throws sk::Error
// unless 1 <= stages, 0 <= stage < stages, 1 <= micro_batches.
Program make_schedule(ScheduleKind kind, int stages, int stage, int micro_batches);

// Forward only (evaluation, generation): recv_act(m), F(m), send_act(m) for m = 0 … M-1.
Program make_forward_schedule(int stages, int stage, int micro_batches);

// Fraction of a step each stage idles with equal forward/backward times everywhere: (P-1)/(M+P-1).
double theoretical_bubble(int stages, int micro_batches);

// The bubble as measured on real ranks, comparable with theoretical_bubble: the idle share of the
// pipeline's area, 1 - sum(compute_s) / (ranks x max(pipeline_s)), where each rank reports its
// compute time and the wall time of its own part of the pipeline (which ends when its last
// backward does: a later stage finishes before the first one, so its own waits alone undercount
// the bubble). 0 when nothing ran; never below 0.
double measured_bubble(const std::vector<double>& compute_s, const std::vector<double>& pipeline_s);

// "F0 | S>0 | R<1 F1 | ..." for messages and tests.
std::string describe(const Program& p);

struct SimResult {
  bool deadlock = false;
  std::string error;                 // what deadlocked / which rule broke ("" when fine)
  double makespan = 0;               // time until the last stage finishes
  std::vector<double> busy;          // compute time per stage
  std::vector<double> finish;        // time each stage's program ends
  std::vector<int> max_in_flight;    // most micro-batches forwarded but not yet backwarded, per stage
  double bubble() const;             // 1 - mean(busy) / makespan
};
// Runs every stage's program with compute times t_forward / t_backward (transfers take no time).
SimResult simulate(ScheduleKind kind, int stages, int micro_batches, double t_forward = 1.0, double t_backward = 2.0);
// The same on explicit programs (one per stage; used to test that broken programs are caught).
SimResult simulate_programs(const std::vector<Program>& programs, double t_forward = 1.0, double t_backward = 2.0);

// Checks one stage's program: every micro-batch forward once then backward once, in order; each
// forward preceded by its recv_act (stages > 0) and followed by its send_act (stages < P-1), each
// backward preceded by its recv_grad (stages < P-1) and followed by its send_grad (stages > 0).
// Returns "" or the first broken rule.
// forward_only: the rules of make_forward_schedule (no backward, no gradient transfers).
std::string check_program(const Program& p, int stages, int stage, int micro_batches, bool forward_only = false);

}  // namespace sk::par
