// checkpoint_json.cpp — see checkpoint_json.h.
#include "trainer/checkpoint/checkpoint_json.h"

#include <climits>
#include <map>

#include "model/core/error.h"
#include "trainer/checkpoint/strict_json.h"

namespace sk {
namespace {

using json = nlohmann::json;

// obj[key], or a null value when obj is not an object or has no such key (json's const
// operator[] must not be used on a missing key).
const json& field(const json& obj, const char* key) {
  static const json null_value;
  if (!obj.is_object()) return null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

bool is_hex8(const json& j) {
  if (!j.is_string()) return false;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.size() != 8) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\0') == std::string::npos;
}

std::uint64_t get_u64(const json& obj, const char* key, const std::string& what) {
  const json& v = field(obj, key);
  SK_CHECK(v.is_number_unsigned(), what, ": '", key, "' must be an integer >= 0");
  return v.get<std::uint64_t>();
}

std::int64_t get_i64(const json& obj, const char* key, const std::string& what, std::int64_t lo) {
  const json& v = field(obj, key);
  SK_CHECK(v.is_number_integer(), what, ": '", key, "' must be an integer");
  SK_CHECK(!v.is_number_unsigned() || v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX), what, ": '", key,
           "' = ", v.dump(), " is out of range");
  const std::int64_t x = v.get<std::int64_t>();
  SK_CHECK(x >= lo, what, ": '", key, "' = ", x, " must be >= ", lo);
  return x;
}

}  // namespace

CheckpointIndex parse_checkpoint_index(std::string_view text, const std::string& where_s) {
  const std::string where = cat("checkpoint: '", where_s, "'");
  const json index = parse_json_strict(text, where);
  SK_CHECK(index.is_object(), where, ": malformed index: expected a JSON object");
  const json& version = field(index, "format_version");
  SK_CHECK(version.is_number_integer(), where, ": malformed index: 'format_version' must be an integer");
  SK_CHECK(version == 1 || version == kCheckpointFormatVersion, where, ": format_version ", version.dump(), " is not 1 or ",
           kCheckpointFormatVersion, " (written by a newer sinkhorn?)");
  const json& files = field(index, "files");
  const json& tensors = field(index, "tensors");
  SK_CHECK(files.is_object(), where, ": malformed index: 'files' must be an object");
  SK_CHECK(tensors.is_object(), where, ": malformed index: 'tensors' must be an object");
  CheckpointIndex out;
  out.version = version.get<int>();
  std::map<std::string, std::uint64_t> sizes;
  for (auto it = files.begin(); it != files.end(); ++it) {
    const std::string fwhere = cat(where, ": file '", it.key(), "'");
    SK_CHECK(plain_file_name(it.key()), fwhere, ": not a plain file name inside the step folder");
    CheckpointIndex::File f;
    f.name = it.key();
    f.bytes = get_u64(*it, "bytes", fwhere);
    SK_CHECK(is_hex8(field(*it, "crc32")), fwhere, ": 'crc32' must be 8 lower-case hex digits");
    f.crc32 = field(*it, "crc32").get<std::string>();
    sizes[f.name] = f.bytes;
    out.files.push_back(std::move(f));
  }
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    const std::string twhere = cat(where, ": tensor '", it.key(), "'");
    const json& t = *it;
    SK_CHECK(field(t, "file").is_string(), twhere, ": 'file' must be a string");
    CheckpointIndex::TensorEntry e;
    e.name = it.key();
    e.file = field(t, "file").get<std::string>();
    SK_CHECK(sizes.count(e.file), twhere, ": file '", e.file, "' is not listed under 'files'");
    const json& r = field(t, "byte_range");
    SK_CHECK(r.is_array() && r.size() == 2 && r[0].is_number_unsigned() && r[1].is_number_unsigned(), twhere,
             ": 'byte_range' must be [begin, end]");
    e.begin = r[0].get<std::uint64_t>();
    e.end = r[1].get<std::uint64_t>();
    SK_CHECK(e.begin <= e.end && e.end <= sizes[e.file], twhere, ": byte range [", e.begin, ", ", e.end,
             ") past the end of '", e.file, "' (", sizes[e.file], " bytes)");
    SK_CHECK(is_hex8(field(t, "crc32")), twhere, ": 'crc32' must be 8 lower-case hex digits");
    e.crc32 = field(t, "crc32").get<std::string>();
    const json& dt = field(t, "dtype");
    static const std::map<std::string, std::uint64_t> sizes_of{{"F32", 4}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"U8", 1}};
    SK_CHECK(dt.is_string() && sizes_of.count(dt.get<std::string>()), twhere, ": 'dtype' must be one of F32, BF16, I64, I32, U8");
    e.dtype = dt.get<std::string>();
    const json& sh = field(t, "shape");
    SK_CHECK(sh.is_array(), twhere, ": 'shape' must be a list of integers >= 0");
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : sh) {
      SK_CHECK(d.is_number_unsigned() && d.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX), twhere,
               ": 'shape' must be a list of integers >= 0");
      overflow = overflow || __builtin_mul_overflow(numel, d.get<std::uint64_t>(), &numel);
      e.shape.push_back(d.get<std::int64_t>());
    }
    std::uint64_t bytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, sizes_of.at(e.dtype), &bytes);
    SK_CHECK(!overflow && bytes == e.end - e.begin, twhere, ": ", e.end - e.begin, " bytes do not hold ", e.dtype,
             sh.dump());
    out.tensors.push_back(std::move(e));
  }
  bool model = false;
  for (const auto& [name, bytes] : sizes)
    model = model || (out.version == 1 ? name == "model.safetensors" : name.rfind("model", 0) == 0);
  SK_CHECK(model && sizes.count("trainer.json"), where, " does not list a model file (",
           out.version == 1 ? "model.safetensors" : "model-stage-K-of-S.safetensors", ") and trainer.json");
  return out;
}

TrainerState parse_trainer_json(std::string_view text, const std::string& where_s, int* shards) {
  const std::string where = cat("checkpoint: '", where_s, "': malformed");
  const json tj = parse_json_strict(text, cat("checkpoint: '", where_s, "'"));
  SK_CHECK(tj.is_object(), where, ": expected a JSON object");
  TrainerState s;
  s.step = get_i64(tj, "step", where, 0);
  s.tokens_seen = get_i64(tj, "tokens_seen", where, 0);
  const json& sampler = field(tj, "sampler");
  SK_CHECK(sampler.is_object(), where, ": 'sampler' must be an object");
  s.sampler_seed = get_u64(sampler, "seed", where + " sampler");
  s.sampler_step = get_u64(sampler, "step", where + " sampler");
  s.seed = get_u64(tj, "seed", where);
  s.world_size = static_cast<int>(get_i64(tj, "world_size", where, 1));
  SK_CHECK(get_i64(tj, "world_size", where, 1) <= (1 << 24), where, ": 'world_size' is implausibly large");
  const json& version = field(tj, "format_version");
  const int v = version.is_number_integer() ? version.get<int>() : 1;
  SK_CHECK(v == 1 || v == kCheckpointFormatVersion, where, ": format_version ", v, " is not 1 or ",
           kCheckpointFormatVersion);
  s.replicas = s.world_size;
  if (v == 1) {
    const std::int64_t n = get_i64(tj, "optimizer_shards", where, 1);
    SK_CHECK(n <= (1 << 24), where, ": 'optimizer_shards' = ", n, " is implausibly large");
    if (shards) *shards = static_cast<int>(n);
  } else {
    const json& lay = field(tj, "layout");
    SK_CHECK(lay.is_object(), where, ": 'layout' must be an object");
    s.stages = static_cast<int>(get_i64(lay, "pipeline_stages", where + " layout", 1));
    s.replicas = static_cast<int>(get_i64(lay, "data_parallel", where + " layout", 1));
    SK_CHECK(static_cast<std::int64_t>(s.stages) * s.replicas == s.world_size, where, ": layout ", s.stages, " x ",
             s.replicas, " does not make world_size ", s.world_size);
    const json& sl = field(lay, "stage_layers");
    SK_CHECK(sl.is_array() && sl.size() == static_cast<std::size_t>(s.stages), where,
             ": 'stage_layers' must list one entry per stage");
    for (const json& n : sl) {
      SK_CHECK(n.is_number_unsigned() && n.get<std::uint64_t>() >= 1 && n.get<std::uint64_t>() <= (1u << 24), where,
               ": 'stage_layers' entries must be integers >= 1");
      s.stage_layers.push_back(n.get<std::int64_t>());
    }
    if (shards) *shards = 1;
    if (tj.contains("data")) s.data = field(tj, "data");
  }
  SK_CHECK(tj.contains("config"), where, ": 'config' is missing");
  s.config = field(tj, "config");
  return s;
}

}  // namespace sk
