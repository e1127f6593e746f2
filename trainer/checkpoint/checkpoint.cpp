// checkpoint.cpp — see checkpoint.h.
#include "trainer/checkpoint/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "model/core/error.h"
#include "parallel/communicator.h"
#include "parallel/host_values.h"
#include "parallel/watchdog.h"
#include "trainer/checkpoint/checkpoint_json.h"
#include "trainer/checkpoint/strict_json.h"
#include "trainer/checkpoint/safetensors.h"

namespace sk {
namespace fs = std::filesystem;
namespace {

constexpr const char* kLegacyModelFile = "model.safetensors";  // format version 1
constexpr const char* kTrainerFile = "trainer.json";
constexpr const char* kIndexFile = "index.json";
constexpr int kFormatVersion = kCheckpointFormatVersion;

std::string stage_file_name(const char* kind, int stage, int stages) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%s-stage-%d-of-%d.safetensors", kind, stage, stages);
  return buf;
}

// "model" / "optim" / "trainer": what a checkpoint file holds (from its name; version 1 files too).
std::string file_kind(const std::string& name) {
  if (name.rfind("model", 0) == 0) return "model";
  if (name.rfind("optim", 0) == 0) return "optim";
  if (name == kTrainerFile) return "trainer";
  return "other";
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  SK_CHECK(in.good(), "checkpoint: cannot read '", p.string(), "': ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  SK_CHECK(!in.bad(), "checkpoint: cannot read '", p.string(), "'");
  return os.str();
}

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  SK_CHECK(fd >= 0, "checkpoint: cannot open '", p.string(), "' to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  SK_CHECK(rc == 0, "checkpoint: fsync of '", p.string(), "' failed: ", std::strerror(err));
}

// Writes `text` to `p` and fsyncs it (the caller renames folders / files atomically).
void write_synced(const fs::path& p, const std::string& text) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  SK_CHECK(fd >= 0, "checkpoint: cannot create '", p.string(), "': ", std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      throw Error(cat("checkpoint: cannot write '", p.string(), "': ", std::strerror(err)));
    }
    done += static_cast<std::size_t>(w);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  SK_CHECK(::close(fd) == 0 && rc == 0, "checkpoint: cannot sync '", p.string(), "': ", std::strerror(err));
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// Index entries of one safetensors file: tensor -> {file, dtype, shape, byte range, crc32}.
void index_safetensors(const fs::path& folder, const std::string& file, nlohmann::ordered_json& tensors,
                       nlohmann::ordered_json& files) {
  const std::string bytes = read_bytes(folder / file);
  SK_CHECK(bytes.size() >= 8, "checkpoint: '", (folder / file).string(), "' is too short for a safetensors file");
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  SK_CHECK(n <= bytes.size() - 8, "checkpoint: '", (folder / file).string(), "': header length ", n, " past the end");
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  const std::uint64_t base = 8 + n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& off = it.value().at("data_offsets");
    const std::uint64_t b = base + off.at(0).get<std::uint64_t>(), e = base + off.at(1).get<std::uint64_t>();
    SK_CHECK(b <= e && e <= bytes.size(), "checkpoint: '", (folder / file).string(), "' tensor ", it.key(),
             ": byte range past the end");
    nlohmann::ordered_json t;
    t["file"] = file;
    t["dtype"] = it.value().at("dtype");
    t["shape"] = it.value().at("shape");
    t["byte_range"] = {b, e};
    t["crc32"] = hex32(crc32(bytes.data() + b, e - b));
    tensors[it.key()] = t;
  }
  files[file] = {{"kind", file_kind(file)}, {"bytes", bytes.size()}, {"crc32", hex32(crc32(bytes.data(), bytes.size()))}};
}

bool is_step_name(const std::string& s) {
  if (s.size() != 13 || s.rfind("step-", 0) != 0) return false;
  return std::all_of(s.begin() + 5, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void prune(const fs::path& dir, const std::string& keep_name, std::int64_t keep_last) {
  if (keep_last <= 0) return;
  std::vector<std::string> steps;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && is_step_name(name)) steps.push_back(name);
  }
  std::sort(steps.begin(), steps.end());  // zero-padded: lexical = numeric order
  const auto extra = static_cast<std::int64_t>(steps.size()) - keep_last;
  for (std::int64_t i = 0; i < extra; ++i) {
    if (steps[static_cast<std::size_t>(i)] == keep_name) continue;
    std::error_code ec;
    fs::remove_all(dir / steps[static_cast<std::size_t>(i)], ec);
    SK_CHECK(!ec, "checkpoint: cannot remove old checkpoint '", (dir / steps[static_cast<std::size_t>(i)]).string(),
             "': ", ec.message());
  }
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::string checkpoint_dir_name(std::int64_t step) {
  SK_CHECK(step >= 0 && step <= 99999999, "checkpoint: step ", step, " out of range [0, 99999999]");
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}


namespace {

// ---- agreement over the world: a failure on any rank fails the phase everywhere ----
// Runs `fn` (on the ranks for which `active`), then agrees: if any rank failed, every rank throws
// (the failing ones their own error, the others one naming the phase).
template <class Fn>
void phase(par::Communicator* world, bool active, const char* what, Fn&& fn) {
  // Ranks wait here while others write files: up to an hour more than a collective's timeout.
  par::Watchdog::Allowance slow_files(3600);
  std::string error;
  if (active) {
    try {
      fn();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  const double failed = par::max_doubles(world, {error.empty() ? 0.0 : 1.0}, Device::cpu)[0];
  if (!error.empty()) throw Error(error);
  SK_CHECK(failed == 0.0, "checkpoint: ", what, " failed on another rank (see its error); nothing was saved");
}

// The model tensors of this stage: every parameter under every name + the buffers.
TensorMap model_tensors(ParamSet& ps) { return params_by_name(ps, /*with_aliases=*/true, /*with_buffers=*/true); }

// The optimizer state this rank owns, by layout-independent name; a tied replica only on the stage
// of its first use (there its primary name is its init_key). A parameter whose state this rank
// holds only in part (ZeRO-1) is written as pieces "<name>[a:b]" of its flattened elements.
TensorMap optim_tensors(ParamSet& ps, AdamW& opt, bool with_step) {
  TensorMap optim;
  Tensor m = opt.exp_avg().reshape({-1}), v = opt.exp_avg_sq().reshape({-1});
  for (const auto& p : ps.params()) {
    if (p->name() != p->init_key) continue;
    const std::int64_t n = shape_numel(p->shape);
    for (const AdamW::Piece& pc : opt.pieces(p->offset, p->offset + n)) {
      const std::int64_t a = pc.begin - p->offset, b = pc.end - p->offset, len = b - a;
      const bool whole = a == 0 && b == n;
      const std::string suffix = whole ? "" : cat("[", a, ":", b, "]");
      Tensor mp = m.slice0(pc.state_offset, pc.state_offset + len), vp = v.slice0(pc.state_offset, pc.state_offset + len);
      optim["exp_avg." + p->init_key + suffix] = whole ? mp.reshape(p->shape) : mp;
      optim["exp_avg_sq." + p->init_key + suffix] = whole ? vp.reshape(p->shape) : vp;
    }
  }
  if (with_step) optim["step"] = Tensor::from_vector(std::vector<std::int64_t>{opt.steps_taken()}, {1});
  return optim;
}

std::string optim_file_name(const CheckpointShard& s) {
  if (s.shards <= 1) return stage_file_name("optim", s.stage, s.stages);
  char buf[96];
  std::snprintf(buf, sizeof buf, "optim-stage-%d-of-%d-shard-%d-of-%d.safetensors", s.stage, s.stages, s.shard, s.shards);
  return buf;
}

// ---- reading by index ----
struct Entry {
  std::string file, dtype;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
  std::string crc;
};

struct Index {
  fs::path dir;
  int version = 0;
  std::map<std::string, Entry> model, optim;  // tensor name -> where
};

Index open_index(const std::string& step_dir) {
  Index ix;
  ix.dir = step_dir;
  const fs::path ip = ix.dir / kIndexFile;
  SK_CHECK(fs::exists(ip), "checkpoint: '", ip.string(), "' is missing (not a complete checkpoint)");
  const CheckpointIndex idx = parse_checkpoint_index(read_bytes(ip), ip.string());  // every rule checked
  ix.version = idx.version;
  for (const CheckpointIndex::File& f : idx.files) {
    const fs::path p = ix.dir / f.name;
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    SK_CHECK(!ec, "checkpoint: '", p.string(), "' is missing (listed in ", ip.string(), ")");
    SK_CHECK(size == f.bytes, "checkpoint: '", p.string(), "' has ", size, " bytes, index.json says ", f.bytes,
             " (truncated or replaced)");
  }
  for (const CheckpointIndex::TensorEntry& t : idx.tensors) {
    Entry e;
    e.file = t.file;
    e.dtype = t.dtype;
    e.shape = t.shape;
    e.begin = t.begin;
    e.end = t.end;
    e.crc = t.crc32;
    const std::string kind = file_kind(e.file);
    if (kind == "model") ix.model[t.name] = e;
    else if (kind == "optim") ix.optim[t.name] = e;
  }
  return ix;
}

// Reads one tensor's bytes (pread of its range) and checks its crc32.
Tensor read_entry(const Index& ix, const std::string& name, const Entry& e) {
  const fs::path p = ix.dir / e.file;
  DType dt;
  if (e.dtype == "F32") dt = DType::f32;
  else if (e.dtype == "BF16") dt = DType::bf16;
  else if (e.dtype == "I64") dt = DType::i64;
  else if (e.dtype == "I32") dt = DType::i32;
  else if (e.dtype == "U8") dt = DType::u8;
  else throw Error(cat("checkpoint: '", p.string(), "' tensor ", name, ": unsupported dtype ", e.dtype));
  Tensor t = Tensor::empty(e.shape, dt, Device::cpu);
  SK_CHECK(t.nbytes() == e.end - e.begin, "checkpoint: '", p.string(), "' tensor ", name, ": ", e.end - e.begin,
           " bytes for ", e.dtype, shape_str(e.shape));
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  SK_CHECK(fd >= 0, "checkpoint: cannot open '", p.string(), "': ", std::strerror(errno));
  std::size_t done = 0;
  auto* dst = static_cast<char*>(t.raw());
  while (done < t.nbytes()) {
    const ssize_t r = ::pread(fd, dst + done, t.nbytes() - done, static_cast<off_t>(e.begin + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = errno;
      ::close(fd);
      throw Error(cat("checkpoint: '", p.string(), "' tensor ", name, ": cannot read its bytes: ",
                      r == 0 ? "unexpected end of file" : std::strerror(err)));
    }
    done += static_cast<std::size_t>(r);
  }
  ::close(fd);
  const std::string got = hex32(crc32(t.raw(), t.nbytes()));
  SK_CHECK(got == e.crc, "checkpoint: '", p.string(), "' tensor ", name, ": crc32 checksum mismatch (index.json ",
           e.crc, ", file ", got, "): the checkpoint is corrupt");
  return t;
}

// One parameter's optimizer state (`key` = "exp_avg.<init_key>" or "exp_avg_sq.<init_key>", n
// elements) from the index: the whole tensor, or pieces "<key>[a:b]" that must cover it exactly.
std::vector<float> read_optim_state(const Index& ix, const std::string& step_dir, const std::string& key,
                                    std::int64_t n, const std::string& param) {
  std::vector<float> out(static_cast<std::size_t>(n));
  auto whole = ix.optim.find(key);
  if (whole != ix.optim.end()) {
    const Tensor h = read_entry(ix, key, whole->second);
    SK_CHECK(h.dtype() == DType::f32 && h.numel() == n, "checkpoint: '", (ix.dir / whole->second.file).string(),
             "': tensor ", key, " is ", h.str(), ", expected f32 with ", n, " elements");
    std::copy(h.data<float>(), h.data<float>() + n, out.begin());
    return out;
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> got;
  for (auto it = ix.optim.lower_bound(key + "["); it != ix.optim.end() && it->first.rfind(key + "[", 0) == 0; ++it) {
    long long a = -1, b = -1;
    char close = 0;
    const std::string range = it->first.substr(key.size());
    SK_CHECK(std::sscanf(range.c_str(), "[%lld:%lld%c", &a, &b, &close) == 3 && close == ']' && 0 <= a && a < b && b <= n,
             "checkpoint: '", (ix.dir / it->second.file).string(), "': tensor ", it->first,
             ": a malformed element range for a parameter of ", n, " elements");
    const Tensor h = read_entry(ix, it->first, it->second);
    SK_CHECK(h.dtype() == DType::f32 && h.numel() == b - a, "checkpoint: '", (ix.dir / it->second.file).string(),
             "': tensor ", it->first, " is ", h.str(), ", expected f32 with ", b - a, " elements");
    std::copy(h.data<float>(), h.data<float>() + (b - a), out.begin() + a);
    got.emplace_back(a, b);
  }
  std::sort(got.begin(), got.end());
  std::int64_t covered = 0;
  for (const auto& [a, b] : got) {
    SK_CHECK(a == covered, "checkpoint: '", step_dir, "': the pieces of ", key, " do not cover elements ", covered, " … ",
             a - 1, " exactly (optimizer state of parameter ", param, ")");
    covered = b;
  }
  SK_CHECK(covered == n, "checkpoint: '", step_dir, "': tensor ", key, got.empty() ? " missing" : " incomplete",
           " (optimizer state of parameter ", param, ", ", covered, " of ", n, " elements found)");
  return out;
}

// The __metadata__ of a safetensors file, from its header alone.
Metadata header_metadata(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  SK_CHECK(in.good(), "checkpoint: cannot read '", p.string(), "': ", std::strerror(errno));
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  SK_CHECK(in.good() && n < (std::uint64_t{1} << 30), "checkpoint: '", p.string(), "': bad safetensors header");
  std::string hdr(static_cast<std::size_t>(n), '\0');
  in.read(hdr.data(), static_cast<std::streamsize>(n));
  SK_CHECK(in.good(), "checkpoint: '", p.string(), "': truncated safetensors header");
  Metadata meta;
  try {
    const nlohmann::json j = nlohmann::json::parse(hdr);
    if (j.contains("__metadata__") && j["__metadata__"].is_object())
      for (auto it = j["__metadata__"].begin(); it != j["__metadata__"].end(); ++it)
        meta[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("checkpoint: '", p.string(), "': safetensors header is not valid JSON: ", e.what()));
  }
  return meta;
}

// The names a model ParamSet answers to (parameters under every name, buffers).
std::set<std::string> names_of(ParamSet& ps) {
  std::set<std::string> n;
  for (const auto& p : ps.params())
    for (const auto& nm : p->names) n.insert(nm);
  for (auto& b : ps.buffers()) n.insert(b->name);
  return n;
}

// Loads ps's parameters and buffers from the index's model tensors (only those ps needs are read).
void load_model_from_index(const Index& ix, ParamSet& ps, const std::set<std::string>& model_names) {
  const std::set<std::string> known = model_names.empty() ? names_of(ps) : model_names;
  for (const auto& [name, e] : ix.model)
    SK_CHECK(known.count(name), "checkpoint: '", (ix.dir / e.file).string(), "' tensor ", name,
             " does not name any parameter or buffer of the model (a checkpoint of another model?)");
  TensorMap need;
  for (const std::string& nm : names_of(ps)) {
    auto it = ix.model.find(nm);
    if (it != ix.model.end()) need.emplace(nm, read_entry(ix, nm, it->second));
  }
  try {
    load_params(ps, need, LoadOptions{/*require_all=*/true, /*allow_unexpected=*/false});
  } catch (const Error& e) {
    throw Error(cat("checkpoint '", ix.dir.string(), "': ", e.what()));
  }
}

}  // namespace

std::string save_checkpoint(const std::string& dir_s, ParamSet& ps, AdamW& opt, const TrainerState& state,
                            std::int64_t keep_last, const CheckpointShard& shard, par::Communicator* world,
                            const Metadata& model_meta) {
  const fs::path dir(dir_s);
  const std::string name = checkpoint_dir_name(state.step);
  const fs::path tmp = dir / (name + ".tmp"), final_dir = dir / name;

  phase(world, shard.lead, "preparing the checkpoint folder", [&] {
    std::error_code ec;
    fs::create_directories(dir, ec);
    SK_CHECK(!ec, "checkpoint.dir '", dir_s, "': cannot create the folder: ", ec.message());
    fs::remove_all(tmp, ec);  // a leftover of an interrupted write
    SK_CHECK(!ec, "checkpoint: cannot remove the leftover '", tmp.string(), "': ", ec.message());
    fs::create_directory(tmp, ec);
    SK_CHECK(!ec, "checkpoint: cannot create '", tmp.string(), "': ", ec.message());
  });

  const bool optim_writer = shard.shards > 1 || shard.writer;
  phase(world, shard.writer || optim_writer, "writing a stage's files", [&] {
    if (shard.writer) {
      Metadata meta = model_meta;
      meta["format"] = "pt";
      write_safetensors((tmp / stage_file_name("model", shard.stage, shard.stages)).string(), model_tensors(ps), meta);
    }
    if (optim_writer)
      write_safetensors((tmp / optim_file_name(shard)).string(), optim_tensors(ps, opt, shard.shard == 0),
                        {{"step", std::to_string(opt.steps_taken())}});
  });

  phase(world, shard.lead, "completing the checkpoint", [&] {
    nlohmann::ordered_json tj;
    tj["format_version"] = kFormatVersion;
    tj["step"] = state.step;
    tj["tokens_seen"] = state.tokens_seen;
    tj["sampler"] = {{"seed", state.sampler_seed}, {"step", state.sampler_step}};
    tj["seed"] = state.seed;
    tj["world_size"] = state.world_size;
    tj["layout"] = {{"pipeline_stages", state.stages}, {"data_parallel", state.replicas},
                    {"stage_layers", state.stage_layers}};
    tj["config"] = state.config;
    if (!state.data.is_null()) tj["data"] = state.data;
    write_synced(tmp / kTrainerFile, tj.dump(2) + "\n");

    nlohmann::ordered_json tensors = nlohmann::ordered_json::object(), files = nlohmann::ordered_json::object();
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(tmp))
      if (e.path().extension() == ".safetensors") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (int k = 0; k < shard.stages; ++k)
      SK_CHECK(std::count(names.begin(), names.end(), stage_file_name("model", k, shard.stages)) == 1,
               "checkpoint: stage ", k, "'s model file is missing from '", tmp.string(), "'");
    for (const std::string& f : names) index_safetensors(tmp, f, tensors, files);
    {
      const std::string t = read_bytes(tmp / kTrainerFile);
      files[kTrainerFile] = {{"kind", "trainer"}, {"bytes", t.size()}, {"crc32", hex32(crc32(t.data(), t.size()))}};
    }
    nlohmann::ordered_json index;
    index["format_version"] = kFormatVersion;
    index["step"] = state.step;
    index["world_size"] = state.world_size;
    index["layout"] = tj["layout"];
    index["files"] = files;
    index["tensors"] = tensors;
    write_synced(tmp / kIndexFile, index.dump(1) + "\n");

    verify_checkpoint(tmp.string());
    fsync_path(tmp, true);
    std::error_code ec;
    if (fs::exists(final_dir)) {
      fs::remove_all(final_dir, ec);
      SK_CHECK(!ec, "checkpoint: cannot replace '", final_dir.string(), "': ", ec.message());
    }
    fs::rename(tmp, final_dir, ec);
    SK_CHECK(!ec, "checkpoint: cannot rename '", tmp.string(), "' to '", final_dir.string(), "': ", ec.message());
    fsync_path(dir, true);

    const fs::path latest_tmp = dir / "latest.tmp";
    write_synced(latest_tmp, name + "\n");
    fs::rename(latest_tmp, dir / "latest", ec);
    SK_CHECK(!ec, "checkpoint: cannot update '", (dir / "latest").string(), "': ", ec.message());
    fsync_path(dir, true);
    prune(dir, name, keep_last);
  });
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& dir_s) {
  const fs::path latest = fs::path(dir_s) / "latest";
  if (!fs::exists(latest)) return std::nullopt;
  std::string name = read_bytes(latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  SK_CHECK(is_step_name(name), "checkpoint: '", latest.string(), "' = \"", name,
           "\": expected the name of a step folder (step-NNNNNNNN)");
  const fs::path p = fs::path(dir_s) / name;
  SK_CHECK(fs::is_directory(p), "checkpoint: '", latest.string(), "' names '", name, "', which does not exist in '",
           dir_s, "'");
  return p.string();
}

std::vector<std::string> step_folders(const std::string& dir_s) {
  std::vector<std::string> steps;
  std::error_code ec;
  if (!fs::is_directory(dir_s, ec)) return steps;
  for (const auto& e : fs::directory_iterator(dir_s)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && is_step_name(name)) steps.push_back(name);
  }
  std::sort(steps.begin(), steps.end());  // zero-padded: lexical = numeric order
  return steps;
}

std::optional<ResumePoint> find_resume_checkpoint(const std::string& dir_s) {
  const std::vector<std::string> steps = step_folders(dir_s);
  std::string note;
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    const fs::path p = fs::path(dir_s) / *it;
    if (!fs::exists(p / kIndexFile)) {
      note += (note.empty() ? "" : "; ") + ("passed over '" + p.string() + "' (no index.json: incomplete)");
      continue;
    }
    std::string latest_name;
    try {
      if (const auto l = latest_checkpoint(dir_s)) latest_name = fs::path(*l).filename().string();
    } catch (const Error&) {
      latest_name = "?";
    }
    if (latest_name != *it)
      note += (note.empty() ? "" : "; ") +
              (latest_name.empty() ? std::string("no 'latest' file") : "'latest' names " + latest_name) + ", but " +
              *it + " is the newest complete checkpoint";
    return ResumePoint{p.string(), note};
  }
  return std::nullopt;
}

void check_checkpoint_dir_usable(const std::string& dir_s) {
  std::error_code ec;
  fs::path p(dir_s);
  const auto probe = [&](const fs::path& folder) {
    const fs::path f = folder / (".sk-write-probe-" + std::to_string(::getpid()));
    const int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    SK_CHECK_CONFIG(fd >= 0, "checkpoint.dir '", dir_s, "': cannot write into '", folder.string(), "' (",
                    std::strerror(errno), ")");
    ::close(fd);
    ::unlink(f.c_str());
  };
  if (fs::exists(p, ec)) {
    SK_CHECK_CONFIG(fs::is_directory(p, ec), "checkpoint.dir '", dir_s, "': exists and is not a folder");
    probe(p);
    return;
  }
  // The nearest existing ancestor must be a folder we can create the rest in.
  fs::path a = fs::absolute(p, ec).lexically_normal().parent_path();
  while (!fs::exists(a, ec) && a.has_parent_path() && a != a.parent_path()) a = a.parent_path();
  SK_CHECK_CONFIG(fs::is_directory(a, ec), "checkpoint.dir '", dir_s, "': cannot be created: '", a.string(),
                  "' is not a folder");
  probe(a);
}

void refuse_existing_run(const std::string& dir_s) {
  const std::vector<std::string> steps = step_folders(dir_s);
  std::error_code ec;
  const bool latest = fs::exists(fs::path(dir_s) / "latest", ec);
  if (steps.empty() && !latest) return;
  std::string what;
  if (!steps.empty())
    what = steps.size() == 1 ? steps[0] : cat(steps.size(), " step folders, ", steps.front(), " ... ", steps.back());
  if (latest) {
    std::string name;
    try {
      const auto l = latest_checkpoint(dir_s);
      name = l ? fs::path(*l).filename().string() : "";
    } catch (const Error&) {
      name = "damaged";
    }
    what += (what.empty() ? "" : "; ") + ("latest: " + name);
  }
  throw ConfigError(cat("checkpoint.dir '", dir_s, "' already holds a run (", what,
                        "); pass --resume (or --resume=auto) to continue it, or choose another checkpoint.dir"));
}

namespace {

// Checks the listed files of a checkpoint (all when `only` is empty) against index.json: size and
// crc32, naming the damaged tensor when the damage lies in one. One file in memory at a time.
void verify_files(const std::string& step_dir, const std::set<std::string>& only) {
  const fs::path dir(step_dir);
  const fs::path index_path = dir / kIndexFile;
  SK_CHECK(fs::exists(index_path), "checkpoint: '", index_path.string(), "' is missing (not a complete checkpoint)");
  const CheckpointIndex index = parse_checkpoint_index(read_bytes(index_path), index_path.string());
  for (const CheckpointIndex::File& f : index.files) {
    if (!only.empty() && !only.count(f.name)) continue;
    const fs::path p = dir / f.name;
    SK_CHECK(fs::exists(p), "checkpoint: '", p.string(), "' is missing (listed in ", index_path.string(), ")");
    const std::string bytes = read_bytes(p);  // one file in memory at a time
    SK_CHECK(bytes.size() == f.bytes, "checkpoint: '", p.string(), "' has ", bytes.size(), " bytes, index.json says ",
             f.bytes, " (truncated or replaced)");
    const std::string got = hex32(crc32(bytes.data(), bytes.size()));
    if (got == f.crc32) continue;
    // Name the damaged tensor when there is one (byte ranges are within the file: checked by the parse).
    for (const CheckpointIndex::TensorEntry& t : index.tensors) {
      if (t.file != f.name) continue;
      const std::string tg = hex32(crc32(bytes.data() + t.begin, t.end - t.begin));
      SK_CHECK(tg == t.crc32, "checkpoint: '", p.string(), "' tensor ", t.name,
               ": crc32 checksum mismatch (index.json ", t.crc32, ", file ", tg, "): the checkpoint is corrupt");
    }
    throw Error(cat("checkpoint: '", p.string(), "': crc32 checksum mismatch (index.json ", f.crc32, ", file ", got,
                    "; the damage is outside every tensor's data, e.g. in the header): the checkpoint is corrupt"));
  }
}

// The files holding the tensors a stage will read (plus trainer.json).
std::set<std::string> files_for(const Index& ix, ParamSet& ps) {
  std::set<std::string> files{kTrainerFile};
  for (const std::string& nm : names_of(ps)) {
    auto it = ix.model.find(nm);
    if (it != ix.model.end()) files.insert(it->second.file);
  }
  for (const auto& p : ps.params())
    for (const char* pre : {"exp_avg.", "exp_avg_sq."}) {
      const std::string key = pre + p->init_key;
      auto it = ix.optim.find(key);
      if (it != ix.optim.end()) files.insert(it->second.file);
      for (it = ix.optim.lower_bound(key + "["); it != ix.optim.end() && it->first.rfind(key + "[", 0) == 0; ++it)
        files.insert(it->second.file);
    }
  auto st = ix.optim.find("step");
  if (st != ix.optim.end()) files.insert(st->second.file);
  return files;
}

}  // namespace

void verify_checkpoint(const std::string& step_dir) { verify_files(step_dir, {}); }

TrainerState load_checkpoint(const std::string& step_dir, ParamSet& ps, AdamW& opt,
                             const std::set<std::string>& model_names) {
  const Index ix = open_index(step_dir);
  verify_files(step_dir, files_for(ix, ps));  // every file this rank reads, whole (headers included)
  const fs::path tpath = ix.dir / kTrainerFile;
  const TrainerState s = parse_trainer_json(read_bytes(tpath), tpath.string(), nullptr);

  load_model_from_index(ix, ps, model_names);

  // Optimizer state by layout-independent name (format 1: the primary name, the same for a whole model).
  auto step_it = ix.optim.find("step");
  SK_CHECK(step_it != ix.optim.end(), "checkpoint: '", step_dir, "': no optimizer step counter (tensor step)");
  const Tensor st = read_entry(ix, "step", step_it->second);
  SK_CHECK(st.dtype() == DType::i64 && st.numel() == 1, "checkpoint: '", (ix.dir / step_it->second.file).string(),
           "': tensor step must be i64 [1], got ", st.str());
  const std::int64_t t = st.to_vector<std::int64_t>()[0];
  std::vector<float> m(static_cast<std::size_t>(opt.state_numel())), v(m.size());
  for (const auto& p : ps.params()) {
    const std::int64_t n = shape_numel(p->shape);
    const std::vector<AdamW::Piece> mine = opt.pieces(p->offset, p->offset + n);
    if (mine.empty()) continue;  // ZeRO: another replica owns all of it
    for (const bool second : {false, true}) {
      const std::string key = (second ? "exp_avg_sq." : "exp_avg.") + p->init_key;
      const std::vector<float> full = read_optim_state(ix, step_dir, key, n, p->name());
      for (const AdamW::Piece& pc : mine)
        std::copy(full.begin() + (pc.begin - p->offset), full.begin() + (pc.end - p->offset),
                  (second ? v : m).begin() + pc.state_offset);
    }
  }
  opt.load_state(t, Tensor::from_vector(m, {opt.state_numel()}), Tensor::from_vector(v, {opt.state_numel()}));
  return s;
}

std::string resolve_model_weights(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SK_CHECK(fs::exists(st), "'", path, "': no such file or folder (expected a model.safetensors file, a checkpoint ",
           "step folder or a checkpoint dir)");
  fs::path step, file;
  if (fs::is_directory(st)) {
    step = path;
    if (fs::exists(step / "latest")) step = *latest_checkpoint(path);
    if (fs::exists(step / kIndexFile)) return step.string();  // a (multi-file) checkpoint: loaded by index
    file = step / kLegacyModelFile;
    SK_CHECK(fs::is_regular_file(file), "'", path, "': a folder with neither a 'latest' file nor ", kIndexFile,
             " (expected a model.safetensors file, a checkpoint step folder or a checkpoint dir)");
  } else {
    file = path;
    step = file.has_parent_path() ? file.parent_path() : fs::path(".");
  }
  // Checksums whenever an index.json is beside the file (a file inside a step folder included).
  const fs::path index = step / kIndexFile;
  if (fs::exists(index)) {
    const std::string name = file.filename().string();
    const CheckpointIndex idx = parse_checkpoint_index(read_bytes(index), index.string());
    SK_CHECK(
        std::any_of(idx.files.begin(), idx.files.end(), [&](const CheckpointIndex::File& f) { return f.name == name; }),
        "'", file.string(), "': the index.json beside it does not list ", name,
        " (the file does not belong to that checkpoint)");
    verify_files(step.string(), {name});
  } else {
    std::fprintf(stderr, "sinkhorn: note: loading '%s' without checksums (no index.json beside it)\n",
                 file.string().c_str());
    std::fflush(stderr);
  }
  return file.string();
}

std::string load_model_weights(const std::string& path, ParamSet& ps, const std::set<std::string>& model_names) {
  const std::string where = resolve_model_weights(path);
  if (fs::is_directory(where)) {
    verify_checkpoint(where);
    load_model_from_index(open_index(where), ps, model_names);
    return where;
  }
  if (model_names.empty()) {
    load_params_file(ps, where, LoadOptions{/*require_all=*/true, /*allow_unexpected=*/false});
    return where;
  }
  const LoadReport r = load_params_file(ps, where, LoadOptions{/*require_all=*/true, /*allow_unexpected=*/true});
  for (const std::string& n : r.unexpected)
    SK_CHECK(model_names.count(n), where, ": load_params: tensor '", n,
             "' does not name any parameter or buffer of the model");
  return where;
}

TensorMap read_checkpoint_model(const std::string& step_dir, Metadata* metadata) {
  verify_checkpoint(step_dir);
  const Index ix = open_index(step_dir);
  TensorMap all;
  for (const auto& [name, e] : ix.model) all.emplace(name, read_entry(ix, name, e));
  if (metadata) {
    std::set<std::string> files;
    for (const auto& [name, e] : ix.model) files.insert(e.file);
    if (!files.empty()) *metadata = header_metadata(ix.dir / *files.begin());
  }
  return all;
}

std::size_t export_checkpoint(const std::string& path, const std::string& out) {
  const std::string where = resolve_model_weights(path);
  SK_CHECK(fs::is_directory(where), "checkpoint export: '", path, "' is a single file, not a checkpoint (nothing to merge)");
  Metadata meta;
  const TensorMap all = read_checkpoint_model(where, &meta);
  meta["format"] = "pt";
  write_safetensors(out, all, meta);
  return all.size();
}

std::string inspect_checkpoint(const std::string& path) {
  const std::string where = resolve_model_weights(path);
  SK_CHECK(fs::is_directory(where), "checkpoint inspect: '", path, "' is a single file, not a checkpoint");
  verify_checkpoint(where);
  const Index ix = open_index(where);
  const nlohmann::json tj = parse_json_strict(read_bytes(fs::path(where) / kTrainerFile), where + "/trainer.json");
  const nlohmann::json idx = parse_json_strict(read_bytes(fs::path(where) / kIndexFile), where + "/index.json");
  std::ostringstream os;
  os << "checkpoint " << where << "\n";
  os << "  format " << ix.version << ", step " << tj.value("step", 0) << ", tokens seen " << tj.value("tokens_seen", 0)
     << ", seed " << tj.value("seed", 0) << "\n";
  if (tj.contains("layout"))
    os << "  layout: " << tj["layout"].value("pipeline_stages", 1) << " stage(s) x " << tj["layout"].value("data_parallel", 1)
       << " replica(s), layers per stage " << tj["layout"]["stage_layers"].dump() << "\n";
  else
    os << "  layout: 1 stage x " << tj.value("world_size", 1) << " replica(s)\n";
  std::uint64_t bytes = 0;
  for (auto f = idx.at("files").begin(); f != idx.at("files").end(); ++f) bytes += f.value().at("bytes").get<std::uint64_t>();
  os << "  files (" << idx.at("files").size() << ", " << bytes << " bytes, every crc32 verified):\n";
  for (auto f = idx.at("files").begin(); f != idx.at("files").end(); ++f)
    os << "    " << f.key() << "  " << f.value().at("bytes").get<std::uint64_t>() << " bytes  crc32 "
       << f.value().at("crc32").get<std::string>() << "\n";
  std::int64_t params = 0;
  for (const auto& [name, e] : ix.model) params += shape_numel(e.shape);
  os << "  model tensors (" << ix.model.size() << ", " << params << " elements with tied aliases counted per name):\n";
  for (const auto& [name, e] : ix.model)
    os << "    " << name << "  " << e.dtype << shape_str(e.shape) << "  " << e.end - e.begin << " bytes  " << e.file << "\n";
  os << "  optimizer tensors: " << ix.optim.size() << "\n";
  return os.str();
}

}  // namespace sk
