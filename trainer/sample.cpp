// sample.cpp — see sample.h.
#include "trainer/sample.h"

#include <algorithm>
#include <cmath>

#include "model/core/backend.h"
#include "model/core/error.h"
#include "model/core/param.h"
#include "model/layers/layer.h"
#include "model/lm/sinkhorn_lm.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/model_metadata.h"

namespace sk {

SampleResult run_sample(const SampleSpec& s) {
  const bool bytes = s.prompt_tokens.empty();
  SK_CHECK_CONFIG(!bytes || s.model.num_tokens >= 256, "sample: [model] num_tokens = ", s.model.num_tokens,
           ": must be >= 256 (byte tokens; or give a tokenizer)");
  for (std::int64_t t : s.prompt_tokens)
    SK_CHECK_CONFIG(t >= 0 && t < s.model.num_tokens, "sample: prompt token ", t, " is outside [0, num_tokens = ",
             s.model.num_tokens, ")");
  SK_CHECK_CONFIG(s.model.causal, "sample: [model] causal = false: generation needs a causal model");
  SK_CHECK_CONFIG(!s.model.return_embeddings && !s.model.receives_context,
           "sample: the model must be a plain language model (no return_embeddings, no receives_context)");
  SK_CHECK_CONFIG(!bytes || !s.prompt.empty(), "sample: --prompt is empty: give at least one byte");
  SK_CHECK_CONFIG(s.len >= 1, "sample: --len ", s.len, ": must be >= 1");
  SK_CHECK_CONFIG(s.temperature > 0.0 && std::isfinite(s.temperature), "sample: --temperature ", s.temperature,
           ": must be > 0");
  SK_CHECK_CONFIG(s.filter_thres > 0.0 && s.filter_thres < 1.0, "sample: --thres ", s.filter_thres, ": must be in (0, 1)");
  SK_CHECK_CONFIG(!s.eos || (*s.eos >= 0 && *s.eos < s.model.num_tokens), "sample: --eos ", s.eos.value_or(-1),
           ": must be in [0, num_tokens = ", s.model.num_tokens, ")");
  SK_CHECK_CONFIG(has_backend(s.device), "sample: --device ", device_name(s.device), ": no such backend in this process");

  ParamSet ps;
  SinkhornLM lm(s.model, ps);
  ps.finalize(s.device, s.seed);
  SampleResult r;
  try {
    r.weights_file = load_model_weights(s.weights, ps, s.model, &r.notes);
  } catch (const Error& e) {
    // A weights file that is missing, damaged or not of this model is an unusable named file (exit
    // 2); a CUDA failure while copying it to the device stays a runtime failure.
    rethrow_as_config_error(e, cat("sample: --weights ", s.weights, ": "));
  }
  ARConfig arc;
  arc.pad_value = 0;
  arc.ignore_index = -100;
  arc.pad_left = true;
  AutoregressiveWrapper ar(lm, arc);

  std::vector<std::int64_t> prompt = s.prompt_tokens;
  if (bytes)
    for (unsigned char c : s.prompt) prompt.push_back(c);
  const std::int64_t keep = std::min<std::int64_t>(static_cast<std::int64_t>(prompt.size()),
                                                   std::max<std::int64_t>(1, s.model.max_seq_len - 1));
  prompt.erase(prompt.begin(), prompt.end() - keep);

  Context ctx;
  ctx.be = &backend_for(s.device);
  ctx.training = false;
  ctx.seed = s.seed;
  ctx.step = 0;
  GenerateOptions o;
  o.seq_len = s.len;
  o.temperature = s.temperature;
  o.filter = s.filter;
  o.filter_thres = s.filter_thres;
  o.eos_token = s.eos;
  Tensor start = Tensor::from_vector(prompt, {1, keep}, s.device);
  r.tokens = ar.generate(start, Tensor(), o, ctx).to_vector<std::int64_t>();
  return r;
}

}  // namespace sk
