// pipeline.cpp — the pipeline executor (see pipeline.h).
#include "trainer/pipeline.h"

#include <chrono>

#include "model/core/error.h"

namespace sk {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int act_tag(int m) { return 2 * m; }
int grad_tag(int m) { return 2 * m + 1; }

}  // namespace

void PipelineExecutor::read_losses(std::vector<MicroState>& states) {
  std::vector<Tensor> ls;
  for (const MicroState& st : states)
    if (st.loss_t.defined()) ls.push_back(st.loss_t);
  if (ls.empty()) return;
  const std::vector<float> host = backend_of(ls[0]).concat(ls, 0).to_vector<float>();
  std::size_t k = 0;
  for (MicroState& st : states)
    if (st.loss_t.defined()) {
      st.loss = static_cast<double>(host[k++]);
      st.loss_t = Tensor();
    }
}

PipelineTimes PipelineExecutor::run(const par::Program& program, const std::vector<MicroBatch>& mbs,
                                    std::vector<MicroState>& states, bool backward, float loss_scale,
                                    const GradsReady* ready) {
  const auto t0 = Clock::now();
  PipelineTimes t;
  const std::size_t M = mbs.size();
  states.assign(M, MicroState{});
  std::vector<Tensor> in_act(M), in_grad(M), out_act(M), out_grad(M);
  auto micro = [&](const par::Action& a) {
    SK_ASSERT(a.micro >= 0 && static_cast<std::size_t>(a.micro) < M, "pipeline: micro-batch ", a.micro, " out of range");
    return static_cast<std::size_t>(a.micro);
  };
  const Device dev = mbs.empty() ? Device::cpu : mbs[0].ctx.backend().device();
  for (const par::Step& step : program) {
    if (!step.transfers()) {
      const par::Action& a = step.actions[0];
      const std::size_t m = micro(a);
      const auto tc = Clock::now();
      if (a.op == par::Op::forward) {
        out_act[m] = stage_.forward(mbs[m], in_act[m], states[m], backward, loss_scale, m + 1 == M ? ready : nullptr);
        in_act[m] = Tensor();
        t.forward_s += since(tc);
      } else {
        SK_ASSERT(backward, "pipeline: a backward step in a forward-only run");
        out_grad[m] = stage_.backward(mbs[m], in_grad[m], states[m], m + 1 == M ? ready : nullptr);
        in_grad[m] = Tensor();
        t.backward_s += since(tc);
      }
      continue;
    }
    SK_CHECK(peers_.comm, "pipeline: a transfer step without a pipeline communicator");
    const auto tw = Clock::now();
    std::vector<par::Handle> handles;
    peers_.comm->group_start();
    for (const par::Action& a : step.actions) {
      const std::size_t m = micro(a);
      const int tag_m = static_cast<int>(m);
      switch (a.op) {
        case par::Op::send_act:
          SK_ASSERT(out_act[m].defined(), "pipeline: no activation of micro-batch ", m, " to send");
          handles.push_back(peers_.comm->send(out_act[m], peers_.next, act_tag(tag_m)));
          break;
        case par::Op::recv_act:
          in_act[m] = Tensor::empty({stage_.act_numel(mbs[m])}, DType::f32, dev);
          handles.push_back(peers_.comm->recv(in_act[m], peers_.prev, act_tag(tag_m)));
          break;
        case par::Op::send_grad:
          SK_ASSERT(out_grad[m].defined(), "pipeline: no gradient of micro-batch ", m, " to send");
          handles.push_back(peers_.comm->send(out_grad[m], peers_.prev, grad_tag(tag_m)));
          break;
        case par::Op::recv_grad:
          in_grad[m] = Tensor::empty({stage_.grad_numel(mbs[m])}, DType::f32, dev);
          handles.push_back(peers_.comm->recv(in_grad[m], peers_.next, grad_tag(tag_m)));
          break;
        default: SK_ASSERT(false, "pipeline: compute action in a transfer step");
      }
    }
    peers_.comm->group_end();
    par::wait_all(handles);
    for (const par::Action& a : step.actions) {  // sent buffers are free once their sends completed
      if (a.op == par::Op::send_act) out_act[micro(a)] = Tensor();
      if (a.op == par::Op::send_grad) out_grad[micro(a)] = Tensor();
    }
    t.wait_s += since(tw);
  }
  read_losses(states);
  t.total_s = since(t0);
  return t;
}

}  // namespace sk
