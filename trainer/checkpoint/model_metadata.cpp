// model_metadata.cpp — see model_metadata.h.
#include "trainer/checkpoint/model_metadata.h"

#include <filesystem>

#include <charconv>
#include <cmath>
#include <functional>

#include "model/core/error.h"
#include "trainer/checkpoint/checkpoint.h"

namespace sk {
namespace {

constexpr const char* kFormatKey = "sinkhorn.format";
constexpr const char* kWrapperPrefix = "net.net.";

std::string fmt_int(std::int64_t v) { return std::to_string(v); }
std::string fmt_bool(bool v) { return v ? "true" : "false"; }
std::string fmt_double(double d) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}
std::string fmt_list(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// One [model] key: its resolved value as text, and how to set it from text (false: malformed).
struct Field {
  const char* key;
  std::function<std::string(const LMConfig&)> get;
  std::function<bool(LMConfig&, const std::string&)> set;
};

bool parse_int(const std::string& s, std::int64_t& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

Field int_field(const char* key, std::int64_t LMConfig::*m) {
  return {key, [m](const LMConfig& c) { return fmt_int(c.*m); },
          [m](LMConfig& c, const std::string& s) { return parse_int(s, c.*m); }};
}
Field opt_field(const char* key, std::optional<std::int64_t> LMConfig::*m, std::int64_t (LMConfig::*resolved)() const) {
  return {key, [resolved](const LMConfig& c) { return fmt_int((c.*resolved)()); },
          [m](LMConfig& c, const std::string& s) {
            std::int64_t v = 0;
            if (!parse_int(s, v)) return false;
            c.*m = v;
            return true;
          }};
}
Field bool_field(const char* key, bool LMConfig::*m) {
  return {key, [m](const LMConfig& c) { return fmt_bool(c.*m); },
          [m](LMConfig& c, const std::string& s) {
            if (s != "true" && s != "false") return false;
            c.*m = s == "true";
            return true;
          }};
}
Field double_field(const char* key, double LMConfig::*m) {
  return {key, [m](const LMConfig& c) { return fmt_double(c.*m); },
          [m](LMConfig& c, const std::string& s) {
            const auto r = std::from_chars(s.data(), s.data() + s.size(), c.*m);
            return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(c.*m);
          }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      int_field("num_tokens", &LMConfig::num_tokens),
      int_field("dim", &LMConfig::dim),
      int_field("max_seq_len", &LMConfig::max_seq_len),
      int_field("depth", &LMConfig::depth),
      int_field("heads", &LMConfig::heads),
      opt_field("dim_head", &LMConfig::dim_head, &LMConfig::dim_head_v),
      int_field("bucket_size", &LMConfig::bucket_size),
      opt_field("kv_bucket_size", &LMConfig::kv_bucket_size, &LMConfig::kv_bucket_size_v),
      opt_field("context_bucket_size", &LMConfig::context_bucket_size, &LMConfig::context_bucket_size_v),
      bool_field("causal", &LMConfig::causal),
      bool_field("non_permutative", &LMConfig::non_permutative),
      int_field("sinkhorn_iter", &LMConfig::sinkhorn_iter),
      int_field("n_sortcut", &LMConfig::n_sortcut),
      double_field("temperature", &LMConfig::temperature),
      bool_field("reversible", &LMConfig::reversible),
      int_field("ff_chunks", &LMConfig::ff_chunks),
      bool_field("ff_glu", &LMConfig::ff_glu),
      bool_field("return_embeddings", &LMConfig::return_embeddings),
      double_field("ff_dropout", &LMConfig::ff_dropout),
      double_field("attn_dropout", &LMConfig::attn_dropout),
      double_field("attn_layer_dropout", &LMConfig::attn_layer_dropout),
      double_field("layer_dropout", &LMConfig::layer_dropout),
      double_field("emb_dropout", &LMConfig::emb_dropout),
      bool_field("weight_tie", &LMConfig::weight_tie),
      opt_field("emb_dim", &LMConfig::emb_dim, &LMConfig::emb_dim_v),
      bool_field("use_simple_sort_net", &LMConfig::use_simple_sort_net),
      bool_field("receives_context", &LMConfig::receives_context),
      int_field("context_n_sortcut", &LMConfig::context_n_sortcut),
      int_field("n_local_attn_heads", &LMConfig::n_local_attn_heads),
      bool_field("use_rezero", &LMConfig::use_rezero),
      int_field("n_top_buckets", &LMConfig::n_top_buckets),
      {"pkm_layers", [](const LMConfig& c) { return fmt_list(c.pkm_layers); },
       [](LMConfig& c, const std::string& s) {
         if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
         c.pkm_layers.clear();
         std::size_t at = 1;
         while (at < s.size() - 1) {
           std::size_t end = s.find(',', at);
           if (end == std::string::npos) end = s.size() - 1;
           std::string item = s.substr(at, end - at);
           item.erase(0, item.find_first_not_of(' '));
           std::int64_t v = 0;
           if (!parse_int(item, v)) return false;
           c.pkm_layers.push_back(v);
           at = end + 1;
         }
         return true;
       }},
      int_field("pkm_num_keys", &LMConfig::pkm_num_keys),
  };
  return f;
}

std::string meta_key(const Field& f) { return std::string("model.") + f.key; }

}  // namespace

Metadata model_metadata(const LMConfig& model) {
  Metadata m;
  m[kFormatKey] = "1";
  for (const Field& f : fields()) m[meta_key(f)] = f.get(model);
  return m;
}

bool has_model_metadata(const Metadata& meta) { return meta.count(kFormatKey) > 0; }

LMConfig model_from_metadata(const Metadata& meta, const std::string& file) {
  SK_CHECK(has_model_metadata(meta), file, ": no [model] in its __metadata__ (files written by sinkhorn train carry ",
           "it; for other files give the run's CONFIG.toml)");
  SK_CHECK(meta.at(kFormatKey) == "1", file, ": __metadata__ ", kFormatKey, " = \"", meta.at(kFormatKey),
           "\": unknown version (this sinkhorn reads 1)");
  LMConfig c;
  for (const Field& f : fields()) {
    auto it = meta.find(meta_key(f));
    SK_CHECK(it != meta.end(), file, ": __metadata__ has no ", meta_key(f));
    SK_CHECK(f.set(c, it->second), file, ": __metadata__ ", meta_key(f), " = \"", it->second, "\" is malformed");
  }
  return c;
}

void check_model_metadata(const Metadata& meta, const LMConfig& model, const std::string& file) {
  if (!has_model_metadata(meta)) return;
  const LMConfig saved = model_from_metadata(meta, file);
  for (const Field& f : fields()) {
    const std::string want = f.get(model), got = f.get(saved);
    SK_CHECK(want == got, file, ": [model] ", f.key, " = ", want, " in the config, ", got,
             " in the weights' metadata (the weights were trained with ", f.key, " = ", got, ")");
  }
}

WeightsFile read_model_weights(const std::string& path) {
  WeightsFile w;
  w.file = resolve_model_weights(path);
  std::vector<std::string> conv;
  if (std::filesystem::is_directory(w.file)) w.tensors = read_checkpoint_model(w.file, &w.metadata);  // a step folder
  else w.tensors = read_safetensors(w.file, &w.metadata, &conv);
  if (!conv.empty())
    w.notes.push_back(cat("converted ", conv.size(), " tensor(s) to F32 (", conv.front(), conv.size() > 1 ? ", ..." : "",
                          ")"));
  std::size_t bf16 = 0, prefixed = 0;
  for (const auto& [name, t] : w.tensors) {
    bf16 += t.dtype() == DType::bf16;
    prefixed += name.rfind(kWrapperPrefix, 0) == 0;
  }
  if (bf16) w.notes.push_back(cat(bf16, " BF16 tensor(s) are converted to f32 parameters"));
  if (prefixed > 0 && prefixed == w.tensors.size()) {
    TensorMap stripped;
    for (auto& [name, t] : w.tensors) stripped.emplace(name.substr(std::string(kWrapperPrefix).size()), std::move(t));
    w.tensors = std::move(stripped);
    w.notes.push_back(cat("stripped the AutoregressiveWrapper prefix '", kWrapperPrefix, "' from ", prefixed,
                          " tensor names"));
  }
  return w;
}

std::string load_model_weights(const std::string& path, ParamSet& ps, const LMConfig& model,
                                std::vector<std::string>* notes) {
  WeightsFile w = read_model_weights(path);
  check_model_metadata(w.metadata, model, w.file);
  try {
    load_params(ps, w.tensors, LoadOptions{/*require_all=*/true, /*allow_unexpected=*/false});
  } catch (const Error& e) {
    std::size_t wrapped = 0;
    for (const auto& [name, t] : w.tensors) wrapped += name.rfind(kWrapperPrefix, 0) == 0;
    throw Error(cat(w.file, ": ", e.what(),
                    wrapped ? cat(" (", wrapped, " of ", w.tensors.size(), " tensor names start with the wrapper prefix '",
                                  kWrapperPrefix, "'; export the wrapped LM, or all tensors with the prefix)")
                            : std::string()));
  }
  if (notes) notes->insert(notes->end(), w.notes.begin(), w.notes.end());
  return w.file;
}

}  // namespace sk
