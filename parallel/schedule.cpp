// schedule.cpp — pipeline schedules and their simulation (see schedule.h).
#include "parallel/schedule.h"

#include <algorithm>
#include <sstream>

#include "model/core/error.h"

namespace sk::par {

const char* schedule_name(ScheduleKind k) { return k == ScheduleKind::gpipe ? "gpipe" : "1f1b"; }

ScheduleKind parse_schedule(const std::string& s) {
  if (s == "gpipe") return ScheduleKind::gpipe;
  if (s == "1f1b") return ScheduleKind::one_f_one_b;
  throw Error(cat("pipeline schedule \"", s, "\": expected \"1f1b\" or \"gpipe\""));
}

const char* op_name(Op op) {
  switch (op) {
    case Op::forward: return "F";
    case Op::backward: return "B";
    case Op::send_act: return "S>";
    case Op::recv_act: return "R<";
    case Op::send_grad: return "S<";
    case Op::recv_grad: return "R>";
  }
  return "?";
}

namespace {

void compute(Program& p, Op op, int m) { p.push_back(Step{{Action{op, m}}}); }
void transfers(Program& p, std::vector<Action> a) {
  if (!a.empty()) p.push_back(Step{std::move(a)});
}

}  // namespace

Program make_schedule(ScheduleKind kind, int P, int s, int M) {
  SK_CHECK(P >= 1 && s >= 0 && s < P && M >= 1, "make_schedule: need 1 <= stages, 0 <= stage < stages and ",
           "micro_batches >= 1, got stages ", P, ", stage ", s, ", micro_batches ", M);
  const bool first = s == 0, last = s == P - 1;
  Program p;
  auto fwd = [&](int m) {  // receive, forward, send of one micro-batch
    if (!first) transfers(p, {{Op::recv_act, m}});
    compute(p, Op::forward, m);
    if (!last) transfers(p, {{Op::send_act, m}});
  };
  auto bwd = [&](int m) {
    if (!last) transfers(p, {{Op::recv_grad, m}});
    compute(p, Op::backward, m);
    if (!first) transfers(p, {{Op::send_grad, m}});
  };
  if (kind == ScheduleKind::gpipe) {
    for (int m = 0; m < M; ++m) fwd(m);
    for (int m = 0; m < M; ++m) bwd(m);
    return p;
  }
  const int W = std::min(P - s - 1, M), R = M - W;
  for (int m = 0; m < W; ++m) fwd(m);
  if (R > 0 && !first) transfers(p, {{Op::recv_act, W}});
  for (int j = 0; j < R; ++j) {
    const int f = W + j;
    compute(p, Op::forward, f);
    if (!last) transfers(p, {{Op::send_act, f}, {Op::recv_grad, j}});
    compute(p, Op::backward, j);
    if (!first) {
      if (j == R - 1) transfers(p, {{Op::send_grad, j}});
      else transfers(p, {{Op::send_grad, j}, {Op::recv_act, f + 1}});
    }
  }
  for (int j = R; j < M; ++j) bwd(j);
  return p;
}

Program make_forward_schedule(int P, int s, int M) {
  SK_CHECK(P >= 1 && s >= 0 && s < P && M >= 1, "make_forward_schedule: need 1 <= stages, 0 <= stage < stages and ",
           "micro_batches >= 1, got stages ", P, ", stage ", s, ", micro_batches ", M);
  Program p;
  for (int m = 0; m < M; ++m) {
    if (s > 0) transfers(p, {{Op::recv_act, m}});
    compute(p, Op::forward, m);
    if (s < P - 1) transfers(p, {{Op::send_act, m}});
  }
  return p;
}

double theoretical_bubble(int P, int M) { return static_cast<double>(P - 1) / static_cast<double>(M + P - 1); }

std::string describe(const Program& p) {
  std::ostringstream os;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (i) os << " | ";
    for (std::size_t j = 0; j < p[i].actions.size(); ++j)
      os << (j ? " " : "") << op_name(p[i].actions[j].op) << p[i].actions[j].micro;
  }
  return os.str();
}

std::string check_program(const Program& p, int P, int s, int M, bool forward_only) {
  const bool first = s == 0, last = s == P - 1;
  std::vector<int> state(static_cast<std::size_t>(M), 0);  // bit 0 recv_act, 1 F, 2 send_act, 3 recv_grad, 4 B, 5 send_grad
  int next_f = 0, next_b = 0;
  auto at = [&](const Action& a) -> int& { return state[static_cast<std::size_t>(a.micro)]; };
  for (const Step& st : p) {
    if (st.actions.empty()) return "an empty step";
    const bool tr = st.transfers();
    if (!tr && st.actions.size() != 1) return "a compute step with more than one action";
    for (const Action& a : st.actions) {
      if (a.micro < 0 || a.micro >= M) return cat("micro-batch ", a.micro, " out of range");
      const bool is_tr = a.op != Op::forward && a.op != Op::backward;
      if (is_tr != tr) return "a step mixing compute and transfers";
      int& b = at(a);
      switch (a.op) {
        case Op::recv_act:
          if (first) return "the first stage receives an activation";
          if (b & 1) return cat("recv_act ", a.micro, " twice");
          b |= 1;
          break;
        case Op::forward:
          if (a.micro != next_f) return cat("forward ", a.micro, " out of order (expected ", next_f, ")");
          if (!first && !(b & 1)) return cat("forward ", a.micro, " before its activation arrived");
          b |= 2;
          ++next_f;
          break;
        case Op::send_act:
          if (last) return "the last stage sends an activation";
          if (!(b & 2) || (b & 4)) return cat("send_act ", a.micro, " before its forward or twice");
          b |= 4;
          break;
        case Op::recv_grad:
          if (last) return "the last stage receives a gradient";
          if (!(b & 4) || (b & 8)) return cat("recv_grad ", a.micro, " before its activation was sent, or twice");
          b |= 8;
          break;
        case Op::backward:
          if (a.micro != next_b) return cat("backward ", a.micro, " out of order (expected ", next_b, ")");
          if (!(b & 2)) return cat("backward ", a.micro, " before its forward");
          if (!last && !(b & 8)) return cat("backward ", a.micro, " before its gradient arrived");
          b |= 16;
          ++next_b;
          break;
        case Op::send_grad:
          if (first) return "the first stage sends a gradient";
          if (!(b & 16) || (b & 32)) return cat("send_grad ", a.micro, " before its backward or twice");
          b |= 32;
          break;
      }
    }
  }
  for (int m = 0; m < M; ++m) {
    const int want = forward_only ? 2 | (first ? 0 : 1) | (last ? 0 : 4) : 2 | 16 | (first ? 0 : 1 | 32) | (last ? 0 : 4 | 8);
    if (state[static_cast<std::size_t>(m)] != want) return cat("micro-batch ", m, " is not run exactly once each way");
  }
  return "";
}

double measured_bubble(const std::vector<double>& compute_s, const std::vector<double>& pipeline_s) {
  SK_CHECK(compute_s.size() == pipeline_s.size(), "measured_bubble: ", compute_s.size(), " compute times for ",
           pipeline_s.size(), " ranks");
  if (pipeline_s.empty()) return 0;
  const double longest = *std::max_element(pipeline_s.begin(), pipeline_s.end());
  if (!(longest > 0)) return 0;
  double compute = 0;
  for (double c : compute_s) compute += c;
  return std::max(0.0, 1.0 - compute / (static_cast<double>(pipeline_s.size()) * longest));
}

double SimResult::bubble() const {
  if (busy.empty() || makespan <= 0) return 0;
  double mean = 0;
  for (double b : busy) mean += b;
  mean /= static_cast<double>(busy.size());
  return 1.0 - mean / makespan;
}

SimResult simulate_programs(const std::vector<Program>& progs, double tf, double tb) {
  const int P = static_cast<int>(progs.size());
  SimResult r;
  r.busy.assign(static_cast<std::size_t>(P), 0.0);
  r.max_in_flight.assign(static_cast<std::size_t>(P), 0);
  std::vector<std::size_t> pc(static_cast<std::size_t>(P), 0);
  std::vector<double> clock(static_cast<std::size_t>(P), 0.0), posted_at(static_cast<std::size_t>(P), -1.0);
  std::vector<std::vector<bool>> matched(static_cast<std::size_t>(P));
  std::vector<double> done_at(static_cast<std::size_t>(P), 0.0);  // latest completion in the current group
  std::vector<int> in_flight(static_cast<std::size_t>(P), 0);
  auto peer_of = [](int s, Op op) { return op == Op::send_act || op == Op::recv_grad ? s + 1 : s - 1; };
  auto partner = [](Op op) {
    switch (op) {
      case Op::send_act: return Op::recv_act;
      case Op::recv_act: return Op::send_act;
      case Op::send_grad: return Op::recv_grad;
      case Op::recv_grad: return Op::send_grad;
      default: return op;
    }
  };
  auto finished = [&](int s) { return pc[static_cast<std::size_t>(s)] >= progs[static_cast<std::size_t>(s)].size(); };
  for (;;) {
    bool progress = false, all_done = true;
    for (int s = 0; s < P; ++s) {
      const auto us = static_cast<std::size_t>(s);
      if (finished(s)) continue;
      all_done = false;
      const Step& st = progs[us][pc[us]];
      if (!st.transfers()) {
        const Action& a = st.actions[0];
        clock[us] += a.op == Op::forward ? tf : tb;
        r.busy[us] += a.op == Op::forward ? tf : tb;
        in_flight[us] += a.op == Op::forward ? 1 : -1;
        r.max_in_flight[us] = std::max(r.max_in_flight[us], in_flight[us]);
        ++pc[us];
        progress = true;
        continue;
      }
      if (posted_at[us] < 0) {  // post the whole group
        posted_at[us] = clock[us];
        matched[us].assign(st.actions.size(), false);
        done_at[us] = clock[us];
        progress = true;
      }
      for (std::size_t i = 0; i < st.actions.size(); ++i) {
        if (matched[us][i]) continue;
        const Action& a = st.actions[i];
        const int q = peer_of(s, a.op);
        if (q < 0 || q >= P) {
          r.deadlock = true;
          r.error = cat("stage ", s, " has a transfer ", op_name(a.op), a.micro, " to a stage that does not exist");
          return r;
        }
        const auto uq = static_cast<std::size_t>(q);
        if (finished(q) || posted_at[uq] < 0) continue;
        const Step& qs = progs[uq][pc[uq]];
        for (std::size_t j = 0; j < qs.actions.size(); ++j) {
          if (matched[uq][j] || !(qs.actions[j] == Action{partner(a.op), a.micro})) continue;
          const double t = std::max(posted_at[us], posted_at[uq]);
          matched[us][i] = matched[uq][j] = true;
          done_at[us] = std::max(done_at[us], t);
          done_at[uq] = std::max(done_at[uq], t);
          progress = true;
          break;
        }
      }
      if (std::all_of(matched[us].begin(), matched[us].end(), [](bool b) { return b; })) {
        clock[us] = std::max(clock[us], done_at[us]);
        posted_at[us] = -1.0;
        ++pc[us];
        progress = true;
      }
    }
    if (all_done) break;
    if (!progress) {
      r.deadlock = true;
      std::ostringstream os;
      os << "deadlock:";
      for (int s = 0; s < P; ++s) {
        const auto us = static_cast<std::size_t>(s);
        os << " stage " << s << (finished(s) ? " done" : " waits at step " + std::to_string(pc[us]));
      }
      r.error = os.str();
      return r;
    }
  }
  r.makespan = *std::max_element(clock.begin(), clock.end());
  r.finish = clock;
  return r;
}

SimResult simulate(ScheduleKind kind, int P, int M, double tf, double tb) {
  std::vector<Program> progs;
  for (int s = 0; s < P; ++s) progs.push_back(make_schedule(kind, P, s, M));
  return simulate_programs(progs, tf, tb);
}

}  // namespace sk::par
