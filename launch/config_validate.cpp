// config_validate.cpp — every rule over parsed config values. Model-level rules belong to the
// model (validate_lm_config); this file checks [train], [case], and what ties them to the model.
// Messages are one line: "<file> [table]: key = value: rule".
#include <cmath>
#include <set>

#include "launch/config.h"
#include "model/core/error.h"

namespace sk {
namespace {

class Rules {
 public:
  Rules(std::string file, std::string table) : where_(std::move(file) + " [" + std::move(table) + "]") {}

  template <class V>
  [[noreturn]] void fail(const char* key, const V& value, const std::string& rule) const {
    throw_config_error(cat(where_, ": ", key, " = ", value, ": ", rule));
  }
  void at_least(const char* key, std::int64_t v, std::int64_t lo) const {
    if (v < lo) fail(key, v, cat("must be >= ", lo));
  }
  void positive(const char* key, double v) const {
    if (!(v > 0.0) || !std::isfinite(v)) fail(key, v, "must be > 0");
  }
  void non_negative(const char* key, double v) const {
    if (!(v >= 0.0) || !std::isfinite(v)) fail(key, v, "must be >= 0");
  }
  void unit_interval(const char* key, double v) const {
    if (!(v >= 0.0 && v < 1.0)) fail(key, v, "must be in [0, 1)");
  }
  void one_of(const char* key, const std::string& v, const std::set<std::string>& allowed) const {
    if (allowed.count(v)) return;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("\"" + a + "\"");
    fail(key, "\"" + v + "\"", "must be one of " + list);
  }

 private:
  std::string where_;
};

// validate_lm_config (model/) throws sk::Error; a config's model rules are config errors (exit 2).
void validate_lm_as_config(const LMConfig& m, const std::string& where) {
  try {
    validate_lm_config(m, where);
  } catch (const Error& e) {
    if (e.exit_code() != kExitFailure) throw;
    throw ConfigError(e.what());
  }
}

}  // namespace

void validate_train_config(const TrainConfig& t, const LMConfig& m, const std::string& file) {
  Rules r(file, "train");
  r.at_least("batch_size", t.batch_size, 1);
  r.at_least("seq_len", t.seq_len, 1);
  if (t.seq_len > m.max_seq_len)
    r.fail("seq_len", t.seq_len, cat("must be <= model.max_seq_len = ", m.max_seq_len));
  if (t.seq_len % m.bucket_size != 0)
    r.fail("seq_len", t.seq_len,
           cat("must be a multiple of model.bucket_size = ", m.bucket_size, " (training steps run without autopadding)"));
  if (t.seq_len % m.kv_bucket_size_v() != 0)
    r.fail("seq_len", t.seq_len, cat("must be a multiple of model.kv_bucket_size = ", m.kv_bucket_size_v()));
  if (m.use_simple_sort_net && !m.causal && t.seq_len != m.max_seq_len)
    r.fail("seq_len", t.seq_len,
           cat("must equal model.max_seq_len = ", m.max_seq_len, " with a non-causal use_simple_sort_net model"));
  if (m.receives_context)
    Rules(file, "model").fail("receives_context", "true",
                              "a run config trains a plain language model; a decoder needs an encoder's context");
  if (m.return_embeddings)
    Rules(file, "model").fail("return_embeddings", "true",
                              "a run config trains a language model on logits; embeddings have no next-token loss");
  r.positive("lr", t.lr);
  r.positive("pkm_lr", t.pkm_lr);
  r.unit_interval("adam_beta1", t.adam_beta1);
  r.unit_interval("adam_beta2", t.adam_beta2);
  r.positive("adam_eps", t.adam_eps);
  r.non_negative("weight_decay", t.weight_decay);
  r.at_least("steps", t.steps, 1);
  r.at_least("warmup_steps", t.warmup_steps, 0);
  r.at_least("measure_steps", t.measure_steps, 1);
  r.one_of("precision", t.precision, {"fp32", "bf16"});
}

void validate_run_config(const RunConfig& cfg) {
  validate_lm_as_config(cfg.model, cfg.path + " [model]");
  validate_train_config(cfg.train, cfg.model, cfg.path);
  validate_run_tables(cfg);
}

void validate_run_tables(const RunConfig& cfg) {
  const TrainConfig& t = cfg.train;
  Rules r(cfg.path, "train");
  r.at_least("grad_accum", t.grad_accum, 1);
  r.non_negative("grad_clip", t.grad_clip);
  r.at_least("max_skipped_steps", t.max_skipped_steps, 1);
  r.at_least("lr_warmup_steps", t.lr_warmup_steps, 0);
  r.one_of("lr_decay", t.lr_decay, {"cosine", "constant"});
  r.at_least("lr_decay_steps", t.lr_decay_steps, 0);
  r.non_negative("min_lr", t.min_lr);
  if (t.min_lr > t.lr) r.fail("min_lr", t.min_lr, cat("must be <= lr = ", t.lr));
  if (t.lr_decay_steps > 0 && t.lr_decay_steps < t.lr_warmup_steps)
    r.fail("lr_decay_steps", t.lr_decay_steps, cat("must be >= lr_warmup_steps = ", t.lr_warmup_steps, " (or 0)"));
  if (t.random_truncate && !cfg.model.causal)
    r.fail("random_truncate", "true", "needs a causal model (model.causal = true): truncation trains variable-length prefixes");
  if (t.random_truncate && t.seq_len < 2)
    r.fail("random_truncate", "true", cat("needs seq_len >= 2 (lengths are drawn from 2 … seq_len), got seq_len = ", t.seq_len));

  Rules d(cfg.path, "data");
  const DataConfig& data = cfg.data;
  d.one_of("format", data.format, {"bytes", "tokens"});
  d.unit_interval("val_fraction", data.val_fraction);
  d.one_of("order", data.order, {"random_windows", "shuffled_chunks"});
  if (data.format == "bytes") {
    if (data.paths.size() > 1)
      d.fail("path", cat("[", data.paths.size(), " paths]"),
             "format = \"bytes\" reads one text file; token shards need format = \"tokens\"");
    if (!data.val_paths.empty())
      d.fail("val_path", "\"" + data.val_paths[0] + "\"",
             "needs format = \"tokens\" (a bytes corpus holds out val_fraction of its file)");
    if (!data.tokenizer.empty())
      d.fail("tokenizer", "\"" + data.tokenizer + "\"",
             "needs format = \"tokens\" (byte tokens are bytes; tokenize the text with sinkhorn tokenize encode)");
  }

  Rules l(cfg.path, "log");
  const LogConfig& g = cfg.log;
  l.at_least("interval", g.interval, 1);
  l.at_least("eval_interval", g.eval_interval, 0);
  l.at_least("eval_batches", g.eval_batches, 0);  // 0 = the whole validation split
  l.at_least("sample_interval", g.sample_interval, 0);
  l.at_least("sample_len", g.sample_len, 1);
  l.positive("sample_temperature", g.sample_temperature);
  l.non_negative("peak_tflops", g.peak_tflops);
  l.one_of("sample_filter", g.sample_filter, {"top_k", "top_p"});
  if (!(g.sample_filter_thres > 0.0 && g.sample_filter_thres < 1.0))
    l.fail("sample_filter_thres", g.sample_filter_thres, "must be in (0, 1)");
  if (g.sample_eos != -1 && (g.sample_eos < 0 || g.sample_eos >= cfg.model.num_tokens))
    l.fail("sample_eos", g.sample_eos, cat("must be -1 (none) or in [0, model.num_tokens = ", cfg.model.num_tokens, ")"));
  if (g.sample_interval > 0 && !cfg.model.causal)
    Rules(cfg.path, "model").fail("causal", "false", "log.sample_interval > 0 needs a causal model (generation)");

  Rules c(cfg.path, "checkpoint");
  c.at_least("interval", cfg.checkpoint.interval, 0);
  c.at_least("keep_last", cfg.checkpoint.keep_last, 0);

  Rules p(cfg.path, "parallel");
  const ParallelConfig& pc = cfg.parallel;
  p.at_least("pipeline_stages", pc.pipeline_stages, 1);
  if (pc.pipeline_stages > cfg.model.depth)
    p.fail("pipeline_stages", pc.pipeline_stages,
           cat("must be <= model.depth = ", cfg.model.depth, " (a stage holds at least one layer)"));
  p.one_of("schedule", pc.schedule, {"1f1b", "gpipe"});
  if (!pc.stage_layers.empty()) {
    auto list = [&] {
      std::string s = "[";
      for (std::size_t i = 0; i < pc.stage_layers.size(); ++i) s += (i ? ", " : "") + std::to_string(pc.stage_layers[i]);
      return s + "]";
    };
    if (static_cast<std::int64_t>(pc.stage_layers.size()) != pc.pipeline_stages)
      p.fail("stage_layers", list(), cat("needs one entry per pipeline stage (pipeline_stages = ", pc.pipeline_stages,
                                         "), got ", pc.stage_layers.size()));
    std::int64_t sum = 0;
    for (std::int64_t n : pc.stage_layers) {
      if (n < 1) p.fail("stage_layers", list(), "every stage needs at least one layer");
      sum += n;
    }
    if (sum != cfg.model.depth)
      p.fail("stage_layers", list(), cat("must sum to model.depth = ", cfg.model.depth, ", got ", sum));
  }
  p.positive("timeout_s", pc.timeout_s);
  p.non_negative("bucket_mb", pc.bucket_mb);
  if (pc.zero_stage != 0 && pc.zero_stage != 1) p.fail("zero_stage", pc.zero_stage, "must be 0 or 1");
  p.one_of("grad_reduce_dtype", pc.grad_reduce_dtype, {"fp32", "bf16"});
  if (pc.pipeline_stages > 1 && cfg.model.receives_context)
    p.fail("pipeline_stages", pc.pipeline_stages, "a pipeline needs a plain language model (no receives_context)");
}

void validate_for_training(const RunConfig& cfg, int world_size) {
  if (cfg.data.path.empty())
    throw_config_error(cat(cfg.path, " [data]: path: missing (required by sinkhorn train: a text file read as byte tokens, ",
                           "or token shards with format = \"tokens\")"));
  if (cfg.log.tensorboard && cfg.log.dir.empty())
    Rules(cfg.path, "log").fail("tensorboard", "true", "needs log.dir (the event files go next to metrics.jsonl)");
  if (cfg.data.format == "bytes" && cfg.model.num_tokens < 256)
    Rules(cfg.path, "model").fail("num_tokens", cfg.model.num_tokens,
                                  "must be >= 256 to train on byte tokens ([data] reads a file byte by byte)");
  const TrainConfig& t = cfg.train;
  const std::int64_t P = cfg.parallel.pipeline_stages;
  if (world_size % P != 0)
    Rules(cfg.path, "parallel").fail("pipeline_stages", P,
                                     cat("must divide the number of ranks (", world_size,
                                         "): world = pipeline_stages x data-parallel replicas"));
  const std::int64_t replicas = world_size / P;
  const std::int64_t parts = replicas * t.grad_accum;
  if (t.batch_size % parts != 0)
    Rules(cfg.path, "train").fail("batch_size", t.batch_size,
                                  cat("must be divisible by data-parallel replicas (", replicas, ") * grad_accum (",
                                      t.grad_accum, ") = ", parts, ": batch_size is the global batch of one step"));
}

void validate_reference_case_config(const ReferenceCaseConfig& c, const std::string& file) {
  Rules r(file, "case");
  const CaseInfo& i = c.info;
  if (i.name.empty()) r.fail("name", "\"\"", "must not be empty");
  r.one_of("kind", i.kind, {"lm", "embeddings", "encoder_decoder"});
  r.at_least("batch_size", i.batch_size, 1);
  r.at_least("seq_len", i.seq_len, 1);
  r.at_least("context_seq_len", i.context_seq_len, 0);
  r.one_of("autopad", i.autopad, {"none", "left", "right"});
  r.one_of("loss", i.loss, {"cross_entropy", "mse_probe"});
  r.one_of("mode", i.mode, {"eval", "train"});
  if (i.kind == "encoder_decoder") {
    if (!c.encoder || !c.decoder) r.fail("kind", "\"encoder_decoder\"", "needs tables [encoder] and [decoder]");
    if (c.model) r.fail("kind", "\"encoder_decoder\"", "takes [encoder] and [decoder], not [model]");
    r.at_least("context_seq_len", i.context_seq_len, 1);
    validate_lm_as_config(*c.encoder, file + " [encoder]");
    validate_lm_as_config(*c.decoder, file + " [decoder]");
    if (!c.encoder->return_embeddings)
      Rules(file, "encoder").fail("return_embeddings", "false", "an encoder must return embeddings (its output is the context)");
    if (!c.decoder->receives_context)
      Rules(file, "decoder").fail("receives_context", "false", "a decoder must receive the encoder's context");
  } else {
    if (!c.model) r.fail("kind", "\"" + i.kind + "\"", "needs a table [model]");
    if (c.encoder || c.decoder) r.fail("kind", "\"" + i.kind + "\"", "takes [model], not [encoder]/[decoder]");
    validate_lm_as_config(*c.model, file + " [model]");
    const bool emb = i.kind == "embeddings";
    if (c.model->return_embeddings != emb)
      Rules(file, "model").fail("return_embeddings", c.model->return_embeddings ? "true" : "false",
                                cat("must be ", emb ? "true" : "false", " for a case of kind \"", i.kind, "\""));
  }
  if ((i.loss == "mse_probe") != (i.kind == "embeddings"))
    r.fail("loss", "\"" + i.loss + "\"",
           "mse_probe is the loss of embeddings cases, cross_entropy that of lm / encoder_decoder cases");
}

}  // namespace sk
