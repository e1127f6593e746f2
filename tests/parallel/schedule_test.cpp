// Pipeline schedules (parallel/schedule.h) without processes: the rules of every stage's program,
// deadlock freedom under rendezvous transfers for P <= 8 stages and M <= 16 micro-batches, the
// 1F1B in-flight bound, and the bubble against its closed form (P-1)/(M+P-1). The simulator is
// itself checked on programs that must deadlock or break a rule.
#include <gtest/gtest.h>

#include "model/core/error.h"
#include "parallel/schedule.h"

namespace sk::par {
namespace {

TEST(Schedule, ParsesNames) {
  EXPECT_EQ(parse_schedule("1f1b"), ScheduleKind::one_f_one_b);
  EXPECT_EQ(parse_schedule("gpipe"), ScheduleKind::gpipe);
  EXPECT_STREQ(schedule_name(ScheduleKind::one_f_one_b), "1f1b");
  try {
    parse_schedule("zb");
    FAIL() << "accepted an unknown schedule";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"zb\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_schedule(ScheduleKind::gpipe, 2, 2, 4), Error);
  EXPECT_THROW(make_schedule(ScheduleKind::gpipe, 2, 0, 0), Error);
}

// The hand-written programs of a 2-stage, 3-micro-batch pipeline.
TEST(Schedule, KnownPrograms) {
  EXPECT_EQ(describe(make_schedule(ScheduleKind::gpipe, 2, 0, 3)),
            "F0 | S>0 | F1 | S>1 | F2 | S>2 | R>0 | B0 | R>1 | B1 | R>2 | B2");
  EXPECT_EQ(describe(make_schedule(ScheduleKind::gpipe, 2, 1, 3)),
            "R<0 | F0 | R<1 | F1 | R<2 | F2 | B0 | S<0 | B1 | S<1 | B2 | S<2");
  // 1F1B: stage 0 warms up with one forward, then pairs a forward with a backward.
  EXPECT_EQ(describe(make_schedule(ScheduleKind::one_f_one_b, 2, 0, 3)),
            "F0 | S>0 | F1 | S>1 R>0 | B0 | F2 | S>2 R>1 | B1 | R>2 | B2");
  EXPECT_EQ(describe(make_schedule(ScheduleKind::one_f_one_b, 2, 1, 3)),
            "R<0 | F0 | B0 | S<0 R<1 | F1 | B1 | S<1 R<2 | F2 | B2 | S<2");
  // One stage: no transfers; 1F1B alternates.
  EXPECT_EQ(describe(make_schedule(ScheduleKind::one_f_one_b, 1, 0, 2)), "F0 | B0 | F1 | B1");
  EXPECT_EQ(describe(make_schedule(ScheduleKind::gpipe, 1, 0, 2)), "F0 | F1 | B0 | B1");
}

TEST(Schedule, EveryLayoutUpTo8StagesAnd16MicroBatches) {
  for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b})
    for (int P = 1; P <= 8; ++P)
      for (int M = 1; M <= 16; ++M) {
        const std::string where = cat(schedule_name(k), " P=", P, " M=", M);
        for (int s = 0; s < P; ++s) {
          const std::string e = check_program(make_schedule(k, P, s, M), P, s, M);
          EXPECT_EQ(e, "") << where << " stage " << s;
        }
        const SimResult r = simulate(k, P, M);
        ASSERT_FALSE(r.deadlock) << where << ": " << r.error;
        for (int s = 0; s < P; ++s) {
          const int bound = k == ScheduleKind::one_f_one_b ? std::min(P - s, M) : M;
          EXPECT_LE(r.max_in_flight[static_cast<std::size_t>(s)], bound) << where << " stage " << s;
          if (k == ScheduleKind::gpipe) {
            EXPECT_EQ(r.max_in_flight[static_cast<std::size_t>(s)], M) << where;
          }
        }
        // Equal forward times and equal backward times on every stage: the closed form.
        EXPECT_NEAR(r.bubble(), theoretical_bubble(P, M), 1e-12) << where;
        const SimResult eq = simulate(k, P, M, 1.0, 1.0);
        EXPECT_NEAR(eq.bubble(), theoretical_bubble(P, M), 1e-12) << where;
      }
}

TEST(Schedule, ForwardOnly) {
  EXPECT_EQ(describe(make_forward_schedule(3, 1, 2)), "R<0 | F0 | S>0 | R<1 | F1 | S>1");
  for (int P = 1; P <= 8; ++P)
    for (int M = 1; M <= 16; ++M) {
      std::vector<Program> progs;
      for (int s = 0; s < P; ++s) {
        progs.push_back(make_forward_schedule(P, s, M));
        EXPECT_EQ(check_program(progs.back(), P, s, M, /*forward_only=*/true), "") << P << " " << M << " " << s;
        EXPECT_NE(check_program(progs.back(), P, s, M), "") << "a forward-only program lacks the backwards";
      }
      EXPECT_FALSE(simulate_programs(progs).deadlock) << P << " " << M;
    }
}

TEST(Schedule, OneFOneBHoldsFewerMicroBatchesThanGPipe) {
  const SimResult g = simulate(ScheduleKind::gpipe, 4, 8), o = simulate(ScheduleKind::one_f_one_b, 4, 8);
  EXPECT_EQ(g.max_in_flight, (std::vector<int>{8, 8, 8, 8}));
  EXPECT_EQ(o.max_in_flight, (std::vector<int>{4, 3, 2, 1}));
  EXPECT_DOUBLE_EQ(theoretical_bubble(4, 8), 3.0 / 11.0);
}

// What the trainer logs as the bubble (measured_bubble over each rank's compute and own pipeline
// time) is the theory on the simulated timeline, with backward = 2 x forward; each stage's own
// waits (what a rank sees alone) fall short of it whenever P > 1, because later stages finish early.
TEST(Schedule, MeasuredBubbleFromPerRankTimesIsTheTheory) {
  for (ScheduleKind kind : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b})
    for (int P : {1, 2, 3, 4, 8})
      for (int M : {1, 2, 4, 8, 16}) {
        const SimResult r = simulate(kind, P, M);
        ASSERT_FALSE(r.deadlock) << r.error;
        ASSERT_EQ(r.finish.size(), static_cast<std::size_t>(P));
        const std::string where = std::to_string(P) + "x" + std::to_string(M);
        EXPECT_NEAR(measured_bubble(r.busy, r.finish), theoretical_bubble(P, M), 1e-12) << where;
        double own_wait = 0;  // mean over stages of (own time - compute) / own time
        for (int s = 0; s < P; ++s) own_wait += (r.finish[s] - r.busy[s]) / r.finish[s] / P;
        if (P > 1) {
          EXPECT_LT(own_wait, theoretical_bubble(P, M) - 1e-3) << where;
        }
      }
  // Hand count, P = 2, M = 1, F = 1, B = 2: stage 0 busy 3 of 6, stage 1 busy 3 of 5 (F0 first,
  // done when B1 is) -> 1 - 6 / (2 x 6) = 1/2.
  EXPECT_DOUBLE_EQ(measured_bubble({3, 3}, {6, 5}), 0.5);
  EXPECT_DOUBLE_EQ(measured_bubble({}, {}), 0.0);
  EXPECT_DOUBLE_EQ(measured_bubble({2, 2}, {1, 1}), 0.0);  // clock noise never gives a negative bubble
  EXPECT_THROW(measured_bubble({1}, {1, 2}), Error);
}

// The checker and the simulator catch broken programs (so the tests above can fail).
TEST(Schedule, SimulatorFindsDeadlocksAndBrokenRules) {
  // Stage 1 waits for a gradient before sending its activation back... stage 0 sends only after
  // receiving: both wait on each other.
  Program s0 = {Step{{{Op::forward, 0}}}, Step{{{Op::recv_grad, 0}}}, Step{{{Op::send_act, 0}}},
                Step{{{Op::backward, 0}}}};
  Program s1 = {Step{{{Op::recv_act, 0}}}, Step{{{Op::forward, 0}}}, Step{{{Op::backward, 0}}},
                Step{{{Op::send_grad, 0}}}};
  const SimResult r = simulate_programs({s0, s1});
  EXPECT_TRUE(r.deadlock);
  EXPECT_NE(r.error.find("deadlock"), std::string::npos) << r.error;
  EXPECT_NE(check_program(s0, 2, 0, 1), "");  // recv_grad before the activation was sent

  // Ungrouped 1F1B steady state with rendezvous transfers deadlocks: stage 0 sends F1's
  // activation before receiving B0's gradient while stage 1 sends B0's gradient before receiving
  // F1's activation.
  Program u0 = {Step{{{Op::forward, 0}}}, Step{{{Op::send_act, 0}}}, Step{{{Op::forward, 1}}},
                Step{{{Op::send_act, 1}}}, Step{{{Op::recv_grad, 0}}}, Step{{{Op::backward, 0}}},
                Step{{{Op::recv_grad, 1}}}, Step{{{Op::backward, 1}}}};
  Program u1 = {Step{{{Op::recv_act, 0}}}, Step{{{Op::forward, 0}}}, Step{{{Op::backward, 0}}},
                Step{{{Op::send_grad, 0}}}, Step{{{Op::recv_act, 1}}}, Step{{{Op::forward, 1}}},
                Step{{{Op::backward, 1}}}, Step{{{Op::send_grad, 1}}}};
  EXPECT_EQ(check_program(u0, 2, 0, 2), "");
  EXPECT_EQ(check_program(u1, 2, 1, 2), "");
  EXPECT_TRUE(simulate_programs({u0, u1}).deadlock);

  // Rule violations.
  Program twice = {Step{{{Op::forward, 0}}}, Step{{{Op::forward, 0}}}, Step{{{Op::backward, 0}}}};
  EXPECT_NE(check_program(twice, 1, 0, 1), "");
  Program reversed = {Step{{{Op::forward, 0}}}, Step{{{Op::forward, 1}}}, Step{{{Op::backward, 1}}},
                      Step{{{Op::backward, 0}}}};
  EXPECT_NE(check_program(reversed, 1, 0, 2).find("out of order"), std::string::npos);
  Program missing = {Step{{{Op::forward, 0}}}};
  EXPECT_NE(check_program(missing, 1, 0, 1), "");
}

}  // namespace
}  // namespace sk::par
