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
  SK_CHECK_CONFIG(it != m.end(), file, ": tensor '", name, "' is missing");
  SK_CHECK_CONFIG(it->second.dtype() == dt, file, ": tensor '", name, "' must be ", dtype_name(dt), ", got ",
                  it->second.str());
  return it->second.to(dev);
}

// A token tensor of the batch file: i64 [B >= 1, T >= 1] (B = `rows` when given) with ids in
// [0, vocab), or ignore_index where allowed (targets).
void check_tokens(const Tensor& t, const char* name, std::int64_t vocab, const std::string& file, std::int64_t rows = -1,
                  std::int64_t cols = -1, bool allow_ignore = false) {
  SK_CHECK_CONFIG(t.ndim() == 2 && t.dim(0) >= 1 && t.dim(1) >= 1, file, ": tensor '", name,
                  "' must be [batch >= 1, length >= 1], got ", t.str());
  SK_CHECK_CONFIG(rows < 0 || t.dim(0) == rows, file, ": tensor '", name, "' has ", t.dim(0), " rows, the tokens ",
                  rows);
  SK_CHECK_CONFIG(cols < 0 || t.dim(1) == cols, file, ": tensor '", name, "' has length ", t.dim(1),
                  ", the tokens ", cols);
  const std::vector<std::int64_t> v = t.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < v.size(); ++i)
    SK_CHECK_CONFIG((v[i] >= 0 && v[i] < vocab) || (allow_ignore && v[i] == -100), file, ": tensor '", name,
                    "' element ", i, " = ", v[i], " is not a token id in [0, num_tokens = ", vocab, ")",
                    allow_ignore ? " or -100" : "");
}

void check_mask(const Tensor& m, const char* name, const Tensor& tokens, const std::string& file) {
  if (!m.defined()) return;
  SK_CHECK_CONFIG(m.dtype() == DType::u8 && m.shape() == tokens.shape(), file, ": ", name, " must be U8 ",
                  shape_str(tokens.shape()), ", got ", m.str());
}

// Reading a case file: a problem with it is a ConfigError (exit 2) naming the file.
template <class F>
auto case_file(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    rethrow_as_config_error(e, "");
  }
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
  SK_CHECK_CONFIG(mode == "eval" || mode == "train", "reference-check: --mode must be 'eval' or 'train', got '", mode,
                  "'");
  const std::string cfg_path = case_dir + "/config.toml";
  const ReferenceCaseConfig rc = load_reference_case_config(cfg_path);
  const CaseInfo& info = rc.info;
  SK_CHECK_CONFIG(info.kind == "lm" || info.kind == "embeddings" || info.kind == "encoder_decoder", cfg_path,
                  ": [case] kind = '", info.kind, "': must be lm, embeddings or encoder_decoder");
  SK_CHECK_CONFIG(info.autopad == "none" || info.autopad == "left" || info.autopad == "right", cfg_path,
                  ": [case] autopad = '", info.autopad, "': must be none, left or right");
  SK_CHECK_CONFIG(info.loss == "cross_entropy" || info.loss == "mse_probe", cfg_path, ": [case] loss = '", info.loss,
                  "': must be cross_entropy or mse_probe");
  const bool encdec = info.kind == "encoder_decoder";
  SK_CHECK_CONFIG(
      encdec ? (rc.encoder.has_value() && rc.decoder.has_value()) : rc.model.has_value(), cfg_path,
      encdec ? ": encoder_decoder cases need [encoder] and [decoder] tables" : ": the case needs a [model] table");
  Backend& be = backend_for(device);

  // Models and weights.
  ParamSet ps;
  std::unique_ptr<SinkhornLM> main_lm, enc;
  if (encdec) {
    enc = std::make_unique<SinkhornLM>(*rc.encoder, ps, "encoder.");
    main_lm = std::make_unique<SinkhornLM>(*rc.decoder, ps, "decoder.");
    SK_CHECK_CONFIG(enc->config().return_embeddings, cfg_path, ": [encoder] return_embeddings must be true");
  } else {
    main_lm = std::make_unique<SinkhornLM>(*rc.model, ps, "");
  }
  SK_CHECK_CONFIG((info.kind == "embeddings") == main_lm->config().return_embeddings, cfg_path, ": [case] kind = '",
                  info.kind,
                  "' does not match return_embeddings = ", main_lm->config().return_embeddings ? "true" : "false");
  ps.finalize(device, static_cast<std::uint64_t>(info.seed));
  case_file([&] { return load_params_file(ps, case_dir + "/weights.safetensors"); });

  // Batch: every tensor checked (shape, dtype, ids in range) before the model sees it.
  const std::string batch_path = case_dir + "/batch.safetensors";
  const TensorMap batch = case_file([&] { return read_safetensors(batch_path); });
  const std::int64_t vocab = main_lm->config().num_tokens;
  Tensor tokens = need_tensor(batch, "tokens", DType::i64, batch_path, Device::cpu);
  check_tokens(tokens, "tokens", vocab, batch_path);
  tokens = tokens.to(device);
  Tensor input_mask = opt_tensor(batch, "input_mask", device);
  check_mask(input_mask, "input_mask", tokens, batch_path);

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
    Tensor ctokens = need_tensor(batch, "context_tokens", DType::i64, batch_path, Device::cpu);
    check_tokens(ctokens, "context_tokens", enc->config().num_tokens, batch_path, tokens.dim(0));
    ctokens = ctokens.to(device);
    Tensor cmask = opt_tensor(batch, "context_mask", device);
    check_mask(cmask, "context_mask", ctokens, batch_path);
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
    Tensor targets = need_tensor(batch, "targets", DType::i64, batch_path, Device::cpu);
    SK_CHECK_CONFIG(!main_lm->config().return_embeddings, cfg_path, ": loss cross_entropy needs logits");
    const std::int64_t B = out.dim(0), T = out.dim(1), V = out.dim(2);
    check_tokens(targets, "targets", V, batch_path, B, T, /*allow_ignore=*/true);
    targets = targets.to(device);
    Tensor l2 = out.reshape({B * T, V});
    Tensor t2 = targets.reshape({B * T});
    CrossEntropyOut ce = be.cross_entropy(l2, t2, -100);
    loss = ce.loss;
    dout = be.cross_entropy_backward(1.f, l2, t2, ce, -100).reshape(out.shape());
  } else {
    Tensor probe = need_tensor(batch, "probe", DType::f32, batch_path, device);
    SK_CHECK_CONFIG(probe.shape() == out.shape(), batch_path, ": probe must be ", shape_str(out.shape()), ", got ",
                    probe.str());
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
