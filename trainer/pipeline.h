// pipeline.h — the executor that ties a pipeline schedule (parallel/schedule.h), a stage's compute
// (trainer/stage.h) and the pipeline communicator together.
//
// It walks the stage's program step by step: a compute step runs Stage::forward / backward of one
// micro-batch; a transfer step posts every transfer of the group at once (non-blocking sends and
// receives, between Communicator::group_start / group_end so NCCL issues them together) and waits
// for all of them. The time spent in those waits is the time this stage waited for a peer: summed
// over a step, divided by the step's pipeline time, it is the measured bubble. Message buffers are
// allocated when a receive is posted and released as soon as the compute step that reads them has
// run; a sent buffer is released when its send completes.
//
// Tags: activation of micro-batch m = 2m, gradient = 2m + 1 (MPI; NCCL orders messages between
// two ranks by posting order, which the schedules keep).
#pragma once
#include <cstdint>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/schedule.h"
#include "trainer/stage.h"

namespace sk {

struct PipelinePeers {
  par::Communicator* comm = nullptr;  // the pipeline group of this replica (nullptr: one stage)
  int prev = -1, next = -1;           // ranks in `comm` of the neighbouring stages (-1: none)
};

struct PipelineTimes {
  double total_s = 0;     // wall time of run()
  double wait_s = 0;      // of which: waiting on transfers (peers)
  double forward_s = 0;   // of which: forward compute (the last stage's includes the loss and head backward)
  double backward_s = 0;  // of which: backward compute
};

class PipelineExecutor {
 public:
  PipelineExecutor(Stage& stage, PipelinePeers peers) : stage_(stage), peers_(peers) {}

  // Runs `program` over the micro-batches (one MicroState each, resized here). backward = false:
  // a forward-only program (evaluation); the last stage's states then hold the losses.
  // `ready` (optional) is handed to the stage for the last micro-batch (only its backward
  // completes the step's gradients).
  PipelineTimes run(const par::Program& program, const std::vector<MicroBatch>& mbs, std::vector<MicroState>& states,
                    bool backward, float loss_scale, const GradsReady* ready = nullptr);

  Stage& stage() { return stage_; }
  // Fills MicroState::loss of every state from its device loss (one host read for all).
  static void read_losses(std::vector<MicroState>& states);
  const PipelinePeers& peers() const { return peers_; }

 private:
  Stage& stage_;
  PipelinePeers peers_;
};

}  // namespace sk
