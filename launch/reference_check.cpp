#include "launch/reference_check.h"

#include <memory>

#include "launch/config.h"
#include "model/lm/autopad.h"
#include "model/lm/sinkhorn_lm.h"
#include "trainer/checkpoint/safetensors.h"

namespace sk {

namespace {

Tensor opt_tensor(const TensorMap& m, const char* name, Device dev) {
  auto it = m.find(name);
  return it == m.end() ? Tensor() : it->second.to(dev);
}

Tensor need_tensor(const TensorMap& m, const char* name, DType dt, const std::string& file, Device dev) {
  auto it = m.find(name);
  SK_CHECK(it != m.end(), file, ": tensor '", name, "' is missing");
  SK_CHECK(it->second.dtype() == dt, file, ": tensor '", name, "' must be ", dtype_name(dt), ", got ",
           it->second.str());
  return it->second.to(dev);
}

// One LM, optionally behind an Autopadder.
struct Runner {
  SinkhornLM* lm = nullptr;
  std::unique_ptr<Autopadder> pad;
  LMStash st;
  AutopadStash pst;
  Tensor forward(const Tensor& x, const Context& c) { return pad ? pad->forward(x, pst, c) : lm->forward(x, st, c); }
  void backward(const Tensor& d, const Context& c) {
    if (pad) pad->backward(d, pst, c);
    else lm->backward(d, st, c);
  }
};

}  // namespace

int reference_check_main(const std::string& case_dir, const std::string& dump_path, const std::string& mode) {
  return reference_check_main(case_dir, dump_path, mode, Device::cpu);
}

int reference_check_main(const std::string& case_dir, const std::string& dump_path, const std::string& mode,
                         Device device) {
  return reference_check_main(case_dir, dump_path, mode, device, Precision::fp32);
}

int reference_check_main(const std::string& case_dir, const std::string& dump_path, const std::string& mode,
                         Device device, Precision precision) {
  SK_CHECK(mode == "eval" || mode == "train", "reference-check: --mode must be 'eval' or 'train', got '", mode, "'");
  const std::string cfg_path = case_dir + "/config.toml";
  const ReferenceCaseConfig rc = load_reference_case_config(cfg_path);
  const CaseInfo& info = rc.info;
  SK_CHECK(info.kind == "lm" || info.kind == "embeddings" || info.kind == "encoder_decoder", cfg_path,
           ": [case] kind = '", info.kind, "': must be lm, embeddings or encoder_decoder");
  SK_CHECK(info.autopad == "none" || info.autopad == "left" || info.autopad == "right", cfg_path, ": [case] autopad = '",
           info.autopad, "': must be none, left or right");
  SK_CHECK(info.loss == "cross_entropy" || info.loss == "mse_probe", cfg_path, ": [case] loss = '", info.loss,
           "': must be cross_entropy or mse_probe");
  const bool encdec = info.kind == "encoder_decoder";
  SK_CHECK(encdec ? (rc.encoder.has_value() && rc.decoder.has_value()) : rc.model.has_value(), cfg_path,
           encdec ? ": encoder_decoder cases need [encoder] and [decoder] tables" : ": the case needs a [model] table");
  Backend& be = backend_for(device);

  // Models and weights.
  ParamSet ps;
  std::unique_ptr<SinkhornLM> main_lm, enc;
  if (encdec) {
    enc = std::make_unique<SinkhornLM>(*rc.encoder, ps, "encoder.");
    main_lm = std::make_unique<SinkhornLM>(*rc.decoder, ps, "decoder.");
    SK_CHECK(enc->config().return_embeddings, cfg_path, ": [encoder] return_embeddings must be true");
  } else {
    main_lm = std::make_unique<SinkhornLM>(*rc.model, ps, "");
  }
  SK_CHECK((info.kind == "embeddings") == main_lm->config().return_embeddings, cfg_path, ": [case] kind = '", info.kind,
           "' does not match return_embeddings = ", main_lm->config().return_embeddings ? "true" : "false");
  ps.finalize(device, static_cast<std::uint64_t>(info.seed));
  load_params_file(ps, case_dir + "/weights.safetensors");

  // Batch.
  const std::string batch_path = case_dir + "/batch.safetensors";
  const TensorMap batch = read_safetensors(batch_path);
  Tensor tokens = need_tensor(batch, "tokens", DType::i64, batch_path, device);
  Tensor input_mask = opt_tensor(batch, "input_mask", device);
  SK_CHECK(!input_mask.defined() || input_mask.dtype() == DType::u8, batch_path, ": input_mask must be U8");

  Context ctx;
  ctx.be = &be;
  ctx.training = mode == "train";
  ctx.seed = static_cast<std::uint64_t>(info.seed);
  ctx.gemm_precision = precision;
  const bool pad_left = info.autopad == "left";

  Runner dec;
  dec.lm = main_lm.get();
  if (info.autopad != "none") dec.pad = std::make_unique<Autopadder>(*main_lm, pad_left);
  Runner encr;
  Context ectx = ctx;
  Tensor dcontext;
  Context dctx = ctx;
  dctx.input_mask = input_mask;
  if (encdec) {
    Tensor ctokens = need_tensor(batch, "context_tokens", DType::i64, batch_path, device);
    Tensor cmask = opt_tensor(batch, "context_mask", device);
    SK_CHECK(!cmask.defined() || cmask.dtype() == DType::u8, batch_path, ": context_mask must be U8");
    encr.lm = enc.get();
    if (info.autopad != "none") encr.pad = std::make_unique<Autopadder>(*enc, pad_left);
    ectx.input_mask = cmask;
    Tensor context = encr.forward(ctokens, ectx);  // [B, Tc, D]
    dctx.context = context;
    dctx.context_mask = cmask;
    dcontext = Tensor::zeros(context.shape(), DType::f32, device);
    dctx.dcontext = &dcontext;
  }
  Tensor out = dec.forward(tokens, dctx);  // [B, T, V] or [B, T, E]

  // Loss and its gradient.
  Tensor loss, dout;
  if (info.loss == "cross_entropy") {
    Tensor targets = need_tensor(batch, "targets", DType::i64, batch_path, device);
    SK_CHECK(!main_lm->config().return_embeddings, cfg_path, ": loss cross_entropy needs logits");
    const std::int64_t B = out.dim(0), T = out.dim(1), V = out.dim(2);
    SK_CHECK(targets.shape() == Shape({B, T}), batch_path, ": targets must be [", B, ", ", T, "], got ", targets.str());
    Tensor l2 = out.reshape({B * T, V});
    Tensor t2 = targets.reshape({B * T});
    CrossEntropyOut ce = be.cross_entropy(l2, t2, -100);
    loss = ce.loss;
    dout = be.cross_entropy_backward(1.f, l2, t2, ce, -100).reshape(out.shape());
  } else {
    Tensor probe = need_tensor(batch, "probe", DType::f32, batch_path, device);
    SK_CHECK(probe.shape() == out.shape(), batch_path, ": probe must be ", shape_str(out.shape()), ", got ", probe.str());
    Tensor diff = be.sub(out, probe);
    loss = be.reduce(be.unary(diff, UnaryOp::square).reshape({-1}), 0, ReduceOp::mean, true);  // [1]
    dout = be.scale(diff, 2.f / static_cast<float>(out.numel()));
  }

  // Backward.
  dec.backward(dout, dctx);
  if (encdec) encr.backward(dcontext, ectx);

  // Dump.
  TensorMap dump = grads_by_name(ps, "grad.");
  dump[main_lm->config().return_embeddings ? "embeddings" : "logits"] = out;
  dump["loss"] = loss;
  if (ctx.training)
    for (auto& b : ps.buffers()) dump["buffer." + b->name] = b->value;
  write_safetensors(dump_path, dump);
  return 0;
}

}  // namespace sk
