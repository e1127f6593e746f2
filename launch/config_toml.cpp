// config_toml.cpp — TOML -> RunConfig / ReferenceCaseConfig. The ONLY translation unit that
// includes toml++ (nvcc cannot compile its headers; style.md §3.3), used header-only.
//
// What this file checks: TOML syntax, which tables and keys exist, and each value's type (with
// the file, line, table, key and value in the message). Rules about the values themselves
// (ranges, cross-key constraints) are in config_validate.cpp.
#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#endif
#ifndef TOML_EXCEPTIONS
#define TOML_EXCEPTIONS 1
#endif
// toml++ 3.3 asserts on some malformed input that it then rejects cleanly (a table header "[.0",
// found by tests/fuzz/fuzz_config): an assert-enabled build aborted, and with clang and NDEBUG the
// check would become __builtin_assume (undefined behaviour). Its internal checks are no-ops here in
// every build, as in the GCC release build, so bad input is always a TOML syntax error.
#ifdef NDEBUG
#define SK_TOML_HAD_NDEBUG 1
#undef NDEBUG
#endif
#define TOML_ASSERT(expr) static_cast<void>(0)
#if __has_include(<toml++/toml.hpp>)
#include <toml++/toml.hpp>
#else
#include <toml++/toml.h>  // Debian's libtomlplusplus-dev 3.3 ships the header under this name
#endif
#ifdef SK_TOML_HAD_NDEBUG
#define NDEBUG 1
#undef SK_TOML_HAD_NDEBUG
#endif

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "launch/config.h"
#include "model/core/error.h"

namespace sk {
namespace {

// ---- formatting values for messages ----
std::string fmt_double(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string fmt_node(const toml::node& n) {
  if (auto v = n.as_integer()) return std::to_string(v->get());
  if (auto v = n.as_floating_point()) return fmt_double(v->get());
  if (auto v = n.as_boolean()) return v->get() ? "true" : "false";
  if (auto v = n.as_string()) return "\"" + v->get() + "\"";
  if (auto a = n.as_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < a->size(); ++i) s += (i ? ", " : "") + fmt_node(*a->get(i));
    return s + "]";
  }
  if (n.is_table()) return "{...} (a table)";
  std::ostringstream os;
  os << n.type();
  return "<" + os.str() + ">";
}

// Levenshtein distance, for "did you mean" hints.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = 3;  // only close matches
  for (const auto& k : known) {
    std::size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

// ---- a parsed document plus where each override came from ----
struct Doc {
  std::string file;
  toml::table root;
  std::map<std::pair<std::string, std::string>, std::string> overridden;  // (table, key) -> --set text
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SK_CHECK_CONFIG(in.good(), "cannot read config file '", path, "'");
  std::ostringstream os;
  os << in.rdbuf();
  SK_CHECK_CONFIG(!in.bad(), "cannot read config file '", path, "'");
  return os.str();
}

Doc parse_doc(const std::string& path, std::string* text_out = nullptr) {
  Doc d;
  d.file = path;
  std::string text = read_file(path);
  if (text_out) *text_out = text;
  try {
    d.root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw ConfigError(cat(path, ":", b.line, ":", b.column, ": TOML syntax error: ", e.description()));
  }
  return d;
}

// Parses an override's value text as a TOML value; not valid TOML -> a bare string.
toml::table parse_override_value(const ConfigOverride& o) {
  try {
    return toml::parse(std::string_view("v = " + o.value), std::string_view("--set"));
  } catch (const toml::parse_error&) {
    const char c = o.value.front();
    SK_CHECK_CONFIG(c != '"' && c != '\'' && c != '[' && c != '{', "--set ", o.text, ": value ", o.value,
                    " is not a valid TOML value");
    toml::table t;
    t.insert_or_assign("v", o.value);
    return t;
  }
}

void apply_overrides(Doc& d, const std::vector<std::string>& overrides) {
  for (const auto& text : overrides) {
    ConfigOverride o = parse_override(text);
    toml::table v = parse_override_value(o);
    toml::node* existing = d.root.get(o.table);
    if (!existing) {
      d.root.insert_or_assign(o.table, toml::table{});
      existing = d.root.get(o.table);
    }
    SK_CHECK_CONFIG(existing->is_table(), "--set ", text, ": '", o.table, "' is not a table in ", d.file);
    existing->as_table()->insert_or_assign(o.key, std::move(*v.get("v")));
    d.overridden[{o.table, o.key}] = text;
  }
}

// Reads the keys of one table with type checks; remembers which keys were read so that the rest
// can be reported as unknown.
class TableReader {
 public:
  TableReader(const Doc& d, const std::string& table_name, const toml::table& t)
      : doc_(d), name_(table_name), tbl_(t) {}

  void integer(const char* key, std::int64_t& out, bool required = false) {
    if (const toml::node* n = find(key, required)) out = as_int(key, *n);
  }
  void opt_integer(const char* key, std::optional<std::int64_t>& out) {
    if (const toml::node* n = find(key, false)) out = as_int(key, *n);
  }
  void unsigned_integer(const char* key, std::uint64_t& out) {
    if (const toml::node* n = find(key, false)) {
      std::int64_t v = as_int(key, *n);
      if (v < 0) fail(key, *n, "must be >= 0");
      out = static_cast<std::uint64_t>(v);
    }
  }
  void number(const char* key, double& out) {
    if (const toml::node* n = find(key, false)) {
      if (auto f = n->as_floating_point()) out = f->get();
      else if (auto i = n->as_integer()) out = static_cast<double>(i->get());
      else fail(key, *n, "expected a number");
      if (!std::isfinite(out)) fail(key, *n, "must be a finite number");
    }
  }
  void boolean(const char* key, bool& out) {
    if (const toml::node* n = find(key, false)) {
      if (auto b = n->as_boolean()) out = b->get();
      else fail(key, *n, "expected true or false");
    }
  }
  void string(const char* key, std::string& out, bool required = false) {
    if (const toml::node* n = find(key, required)) {
      if (auto s = n->as_string()) out = s->get();
      else fail(key, *n, "expected a string");
    }
  }
  void integer_list(const char* key, std::vector<std::int64_t>& out) {
    if (const toml::node* n = find(key, false)) {
      const toml::array* a = n->as_array();
      if (!a) fail(key, *n, "expected an array of integers, e.g. [1, 2]");
      out.clear();
      for (const auto& e : *a) {
        if (!e.is_integer()) fail(key, *n, "expected an array of integers, e.g. [1, 2]");
        out.push_back(e.as_integer()->get());
      }
    }
  }
  void string_list(const char* key, std::vector<std::string>& out) {
    if (const toml::node* n = find(key, false)) {
      const toml::array* a = n->as_array();
      if (!a) fail(key, *n, "expected an array of strings");
      out.clear();
      for (const auto& e : *a) {
        if (!e.is_string()) fail(key, *n, "expected an array of strings");
        out.push_back(e.as_string()->get());
      }
    }
  }

  // Every key of the table must have been read, and every required key present. Unknown keys
  // are reported first: a misspelt required key ("dimm") is named with its hint, not as "dim: missing".
  void finish() const {
    for (const auto& [k, n] : tbl_) {
      std::string key(k.str());
      if (!known_.count(key))
        fail(key.c_str(), n, "unknown key" + suggestion(key, std::vector<std::string>(order_.begin(), order_.end())));
    }
    if (!missing_.empty())
      throw ConfigError(cat(doc_.file, " [", name_, "]: ", missing_.front(), ": missing (required)"));
  }

  [[noreturn]] void fail(const char* key, const toml::node& n, const std::string& rule) const {
    auto it = doc_.overridden.find({name_, key});
    std::string from = it != doc_.overridden.end() ? " (from --set " + it->second + ")" : "";
    std::string line = it == doc_.overridden.end() && n.source().begin.line ? cat(":", n.source().begin.line) : "";
    throw ConfigError(cat(doc_.file, line, " [", name_, "]: ", key, " = ", fmt_node(n), from, ": ", rule));
  }

 private:
  const toml::node* find(const char* key, bool required) {
    known_.insert(key);
    order_.push_back(key);
    const toml::node* n = tbl_.get(key);
    if (!n && required) missing_.push_back(key);  // reported by finish(), after unknown keys
    return n;
  }
  std::int64_t as_int(const char* key, const toml::node& n) const {
    if (auto i = n.as_integer()) return i->get();
    if (auto f = n.as_floating_point(); f && std::isfinite(f->get()) && f->get() == std::floor(f->get()))
      fail(key, n, "expected an integer (write it without a decimal point)");
    fail(key, n, "expected an integer");
  }

  const Doc& doc_;
  std::string name_;
  const toml::table& tbl_;
  std::set<std::string> known_;
  std::vector<std::string> order_;
  std::vector<std::string> missing_;  // required keys not present, in reading order
};

const toml::table* table_of(const Doc& d, const std::string& name) {
  const toml::node* n = d.root.get(name);
  if (!n) return nullptr;
  SK_CHECK_CONFIG(n->is_table(), d.file, ": ", name, " = ", fmt_node(*n), ": expected a table [", name, "]");
  return n->as_table();
}

// Top-level entries must be tables from `allowed` (or, when ignore_prefix is set, tables whose
// name starts with it).
void check_top_level(const Doc& d, const std::vector<std::string>& allowed, const std::string& ignore_prefix = "") {
  for (const auto& [k, n] : d.root) {
    std::string key(k.str());
    if (!ignore_prefix.empty() && key.rfind(ignore_prefix, 0) == 0) continue;
    bool ok = std::find(allowed.begin(), allowed.end(), key) != allowed.end();
    if (!n.is_table()) {
      std::string line = n.source().begin.line ? cat(":", n.source().begin.line) : "";
      throw ConfigError(cat(
          d.file, line, ": ", key, " = ", fmt_node(n), ": key outside any table (expected tables ",
          [&] {
            std::string s;
            for (const auto& a : allowed) s += (s.empty() ? "[" : ", [") + a + "]";
            return s;
          }(),
          ")"));
    }
    if (!ok) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "[" : ", [") + a + "]";
      std::string line = n.source().begin.line ? cat(":", n.source().begin.line) : "";
      throw ConfigError(cat(d.file, line, ": [", key, "]: unknown table", suggestion(key, allowed), " (expected ", list,
                            ignore_prefix.empty() ? "" : ", [" + ignore_prefix + "*]", ")"));
    }
  }
}

// [model] / [encoder] / [decoder]: SinkhornTransformerLM keyword arguments.
LMConfig read_lm(const Doc& d, const std::string& name, const toml::table& t) {
  LMConfig c;
  TableReader r(d, name, t);
  r.integer("num_tokens", c.num_tokens, true);
  r.integer("dim", c.dim, true);
  r.integer("max_seq_len", c.max_seq_len, true);
  r.integer("depth", c.depth, true);
  r.integer("heads", c.heads);
  r.opt_integer("dim_head", c.dim_head);
  r.integer("bucket_size", c.bucket_size);
  r.opt_integer("kv_bucket_size", c.kv_bucket_size);
  r.opt_integer("context_bucket_size", c.context_bucket_size);
  r.boolean("causal", c.causal);
  r.boolean("non_permutative", c.non_permutative);
  r.integer("sinkhorn_iter", c.sinkhorn_iter);
  r.integer("n_sortcut", c.n_sortcut);
  r.number("temperature", c.temperature);
  r.boolean("reversible", c.reversible);
  r.integer("ff_chunks", c.ff_chunks);
  r.boolean("ff_glu", c.ff_glu);
  r.boolean("return_embeddings", c.return_embeddings);
  r.number("ff_dropout", c.ff_dropout);
  r.number("attn_dropout", c.attn_dropout);
  r.number("attn_layer_dropout", c.attn_layer_dropout);
  r.number("layer_dropout", c.layer_dropout);
  r.number("emb_dropout", c.emb_dropout);
  r.boolean("weight_tie", c.weight_tie);
  r.opt_integer("emb_dim", c.emb_dim);
  r.boolean("use_simple_sort_net", c.use_simple_sort_net);
  r.boolean("receives_context", c.receives_context);
  r.integer("context_n_sortcut", c.context_n_sortcut);
  r.integer("n_local_attn_heads", c.n_local_attn_heads);
  r.boolean("use_rezero", c.use_rezero);
  r.integer("n_top_buckets", c.n_top_buckets);
  r.integer_list("pkm_layers", c.pkm_layers);
  r.integer("pkm_num_keys", c.pkm_num_keys);
  r.finish();
  return c;
}

TrainConfig read_train(const Doc& d, const toml::table* t) {
  TrainConfig c;
  if (!t) return c;
  TableReader r(d, "train", *t);
  r.integer("batch_size", c.batch_size);
  r.integer("seq_len", c.seq_len);
  r.number("lr", c.lr);
  r.number("adam_beta1", c.adam_beta1);
  r.number("adam_beta2", c.adam_beta2);
  r.number("adam_eps", c.adam_eps);
  r.number("weight_decay", c.weight_decay);
  r.number("pkm_lr", c.pkm_lr);
  r.integer("steps", c.steps);
  r.integer("warmup_steps", c.warmup_steps);
  r.integer("measure_steps", c.measure_steps);
  r.unsigned_integer("seed", c.seed);
  r.integer("grad_accum", c.grad_accum);
  r.number("grad_clip", c.grad_clip);
  r.integer("lr_warmup_steps", c.lr_warmup_steps);
  r.string("lr_decay", c.lr_decay);
  r.integer("lr_decay_steps", c.lr_decay_steps);
  r.number("min_lr", c.min_lr);
  r.boolean("random_truncate", c.random_truncate);
  r.string("precision", c.precision);
  r.finish();
  return c;
}

DataConfig read_data(const Doc& d, const toml::table* t) {
  DataConfig c;
  if (!t) return c;
  TableReader r(d, "data", *t);
  r.string("path", c.path);
  r.number("val_fraction", c.val_fraction);
  r.string("order", c.order);
  r.finish();
  // A relative path written in the file is relative to the file's folder; one given with --set
  // is relative to the working directory.
  if (!c.path.empty() && !d.overridden.count({"data", "path"})) {
    std::filesystem::path p(c.path);
    if (p.is_relative()) c.path = (std::filesystem::path(d.file).parent_path() / p).lexically_normal().string();
  }
  return c;
}

LogConfig read_log(const Doc& d, const toml::table* t) {
  LogConfig c;
  if (!t) return c;
  TableReader r(d, "log", *t);
  r.integer("interval", c.interval);
  r.string("dir", c.dir);
  r.integer("eval_interval", c.eval_interval);
  r.integer("eval_batches", c.eval_batches);
  r.integer("sample_interval", c.sample_interval);
  r.integer("sample_len", c.sample_len);
  r.string("sample_prompt", c.sample_prompt);
  r.number("sample_temperature", c.sample_temperature);
  r.string("sample_filter", c.sample_filter);
  r.number("sample_filter_thres", c.sample_filter_thres);
  r.integer("sample_eos", c.sample_eos);
  r.finish();
  return c;
}

CheckpointConfig read_checkpoint(const Doc& d, const toml::table* t) {
  CheckpointConfig c;
  if (!t) return c;
  TableReader r(d, "checkpoint", *t);
  r.string("dir", c.dir);
  r.integer("interval", c.interval);
  r.integer("keep_last", c.keep_last);
  r.string("init_from", c.init_from);
  r.finish();
  // Relative like data.path: from the config file's folder, or from the cwd when given with --set.
  if (!c.init_from.empty() && !d.overridden.count({"checkpoint", "init_from"})) {
    std::filesystem::path p(c.init_from);
    if (p.is_relative()) c.init_from = (std::filesystem::path(d.file).parent_path() / p).lexically_normal().string();
  }
  return c;
}

ParallelConfig read_parallel(const Doc& d, const toml::table* t) {
  ParallelConfig c;
  if (!t) return c;
  TableReader r(d, "parallel", *t);
  r.integer("pipeline_stages", c.pipeline_stages);
  r.string("schedule", c.schedule);
  r.integer_list("stage_layers", c.stage_layers);
  r.boolean("allow_shared_gpu", c.allow_shared_gpu);
  r.number("timeout_s", c.timeout_s);
  r.finish();
  return c;
}

CaseInfo read_case(const Doc& d, const toml::table& t) {
  CaseInfo c;
  TableReader r(d, "case", t);
  r.string("name", c.name, true);
  r.string("kind", c.kind, true);
  r.string_list("features", c.features);
  r.integer("batch_size", c.batch_size, true);
  r.integer("seq_len", c.seq_len, true);
  r.integer("context_seq_len", c.context_seq_len);
  r.string("autopad", c.autopad);
  r.string("loss", c.loss);
  r.string("mode", c.mode);
  r.boolean("train_expected", c.train_expected);
  r.integer("seed", c.seed);
  r.finish();
  return c;
}

}  // namespace

ConfigOverride parse_override(const std::string& text) {
  ConfigOverride o;
  o.text = text;
  auto eq = text.find('=');
  SK_CHECK_CONFIG(eq != std::string::npos, "--set ", text, ": expected table.key=value (e.g. train.lr=3e-4)");
  std::string lhs = text.substr(0, eq);
  o.value = text.substr(eq + 1);
  auto trim = [](std::string s) {
    const char* ws = " \t";
    s.erase(0, s.find_first_not_of(ws));
    auto e = s.find_last_not_of(ws);
    s.erase(e == std::string::npos ? 0 : e + 1);
    return s;
  };
  lhs = trim(lhs);
  o.value = trim(o.value);
  auto dot = lhs.find('.');
  SK_CHECK_CONFIG(dot != std::string::npos && lhs.find('.', dot + 1) == std::string::npos, "--set ", text,
                  ": the name must be table.key (e.g. train.lr), got '", lhs, "'");
  o.table = trim(lhs.substr(0, dot));
  o.key = trim(lhs.substr(dot + 1));
  SK_CHECK_CONFIG(!o.table.empty() && !o.key.empty(), "--set ", text, ": empty table or key name");
  SK_CHECK_CONFIG(!o.value.empty(), "--set ", text, ": empty value");
  return o;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig cfg;
  Doc d = parse_doc(path, &cfg.text);
  apply_overrides(d, overrides);
  check_top_level(d, {"model", "train", "data", "log", "checkpoint", "parallel"});
  cfg.path = path;
  cfg.overrides = overrides;
  const toml::table* model = table_of(d, "model");
  SK_CHECK_CONFIG(model, path, ": missing table [model] (the SinkhornTransformerLM arguments)");
  cfg.model = read_lm(d, "model", *model);
  cfg.train = read_train(d, table_of(d, "train"));
  cfg.data = read_data(d, table_of(d, "data"));
  cfg.log = read_log(d, table_of(d, "log"));
  cfg.checkpoint = read_checkpoint(d, table_of(d, "checkpoint"));
  cfg.parallel = read_parallel(d, table_of(d, "parallel"));
  if (cfg.train.seq_len == 0) cfg.train.seq_len = cfg.model.max_seq_len;
  validate_run_config(cfg);
  return cfg;
}

ReferenceCaseConfig load_reference_case_config(const std::string& path) {
  Doc d = parse_doc(path);
  check_top_level(d, {"model", "encoder", "decoder", "case"}, "check_");
  ReferenceCaseConfig cfg;
  if (const toml::table* t = table_of(d, "model")) cfg.model = read_lm(d, "model", *t);
  if (const toml::table* t = table_of(d, "encoder")) cfg.encoder = read_lm(d, "encoder", *t);
  if (const toml::table* t = table_of(d, "decoder")) cfg.decoder = read_lm(d, "decoder", *t);
  const toml::table* c = table_of(d, "case");
  SK_CHECK_CONFIG(c, path, ": missing table [case]");
  cfg.info = read_case(d, *c);
  validate_reference_case_config(cfg, path);
  return cfg;
}

}  // namespace sk
