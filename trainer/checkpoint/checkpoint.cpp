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
#include "trainer/checkpoint/checkpoint_json.h"
#include "trainer/checkpoint/safetensors.h"

namespace sk {
namespace fs = std::filesystem;
namespace {

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kTrainerFile = "trainer.json";
constexpr const char* kIndexFile = "index.json";
constexpr int kFormatVersion = kCheckpointFormatVersion;

std::string optim_file_name(int shard, int shards) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "optim-rank-%04d-of-%04d.safetensors", shard, shards);
  return buf;
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
  files[file] = {{"bytes", bytes.size()}, {"crc32", hex32(crc32(bytes.data(), bytes.size()))}};
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

std::string save_checkpoint(const std::string& dir_s, ParamSet& ps, AdamW& opt, const TrainerState& state,
                            std::int64_t keep_last) {
  const fs::path dir(dir_s);
  const std::string name = checkpoint_dir_name(state.step);
  const fs::path tmp = dir / (name + ".tmp"), final_dir = dir / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  SK_CHECK(!ec, "checkpoint.dir '", dir_s, "': cannot create the folder: ", ec.message());
  fs::remove_all(tmp, ec);  // a leftover of an interrupted write
  SK_CHECK(!ec, "checkpoint: cannot remove the leftover '", tmp.string(), "': ", ec.message());
  fs::create_directory(tmp, ec);
  SK_CHECK(!ec, "checkpoint: cannot create '", tmp.string(), "': ", ec.message());

  // Model: parameters by every reference name, plus buffers.
  write_safetensors((tmp / kModelFile).string(), params_by_name(ps, /*with_aliases=*/true, /*with_buffers=*/true),
                    {{"format", "pt"}});

  // Optimizer state by primary parameter name.
  TensorMap optim;
  Tensor m = opt.exp_avg().reshape({-1}), v = opt.exp_avg_sq().reshape({-1});
  for (const auto& p : ps.params()) {
    const std::int64_t n = shape_numel(p->shape);
    optim["exp_avg." + p->name()] = m.slice0(p->offset, p->offset + n).reshape(p->shape);
    optim["exp_avg_sq." + p->name()] = v.slice0(p->offset, p->offset + n).reshape(p->shape);
  }
  optim["step"] = Tensor::from_vector(std::vector<std::int64_t>{opt.steps_taken()}, {1});
  const std::string optim_file = optim_file_name(0, 1);
  write_safetensors((tmp / optim_file).string(), optim, {{"step", std::to_string(opt.steps_taken())}});

  // trainer.json
  nlohmann::ordered_json tj;
  tj["format_version"] = kFormatVersion;
  tj["step"] = state.step;
  tj["tokens_seen"] = state.tokens_seen;
  tj["sampler"] = {{"seed", state.sampler_seed}, {"step", state.sampler_step}};
  tj["seed"] = state.seed;
  tj["world_size"] = state.world_size;
  tj["optimizer_shards"] = 1;
  tj["config"] = state.config;
  write_synced(tmp / kTrainerFile, tj.dump(2) + "\n");

  // index.json
  nlohmann::ordered_json tensors = nlohmann::ordered_json::object(), files = nlohmann::ordered_json::object();
  index_safetensors(tmp, kModelFile, tensors, files);
  index_safetensors(tmp, optim_file, tensors, files);
  {
    const std::string t = read_bytes(tmp / kTrainerFile);
    files[kTrainerFile] = {{"bytes", t.size()}, {"crc32", hex32(crc32(t.data(), t.size()))}};
  }
  nlohmann::ordered_json index;
  index["format_version"] = kFormatVersion;
  index["step"] = state.step;
  index["world_size"] = state.world_size;
  index["files"] = files;
  index["tensors"] = tensors;
  write_synced(tmp / kIndexFile, index.dump(1) + "\n");

  verify_checkpoint(tmp.string());
  fsync_path(tmp, true);
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

void verify_checkpoint(const std::string& step_dir) {
  const fs::path dir(step_dir);
  const fs::path index_path = dir / kIndexFile;
  SK_CHECK(fs::exists(index_path), "checkpoint: '", index_path.string(), "' is missing (not a complete checkpoint)");
  const CheckpointIndex index = parse_checkpoint_index(read_bytes(index_path), index_path.string());
  for (const CheckpointIndex::File& f : index.files) {
    const fs::path p = dir / f.name;
    SK_CHECK(fs::exists(p), "checkpoint: '", p.string(), "' is missing (listed in ", index_path.string(), ")");
    const std::string bytes = read_bytes(p);
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
                    "): the checkpoint is corrupt"));
  }
}

TrainerState load_checkpoint(const std::string& step_dir, ParamSet& ps, AdamW& opt) {
  verify_checkpoint(step_dir);
  const fs::path dir(step_dir);
  const fs::path tpath = dir / kTrainerFile;
  int shards = 1;
  const TrainerState s = parse_trainer_json(read_bytes(tpath), tpath.string(), &shards);

  load_params_file(ps, (dir / kModelFile).string(), LoadOptions{/*require_all=*/true, /*allow_unexpected=*/false});

  // Optimizer state from every shard, by parameter name.
  TensorMap optim;
  for (int r = 0; r < shards; ++r) {
    const std::string f = (dir / optim_file_name(r, shards)).string();
    SK_CHECK(fs::exists(f), "checkpoint: '", f, "' is missing");
    TensorMap part = read_safetensors(f);
    for (auto& [k, t] : part) optim[k] = t;
  }
  const std::string where = (dir / optim_file_name(0, shards)).string();
  auto step_it = optim.find("step");
  SK_CHECK(step_it != optim.end() && step_it->second.dtype() == DType::i64 && step_it->second.numel() == 1,
           "checkpoint: '", where, "': tensor step (i64 [1]) missing or malformed");
  const std::int64_t t = step_it->second.to_vector<std::int64_t>()[0];
  std::vector<float> m(static_cast<std::size_t>(ps.numel())), v(m.size());
  for (const auto& p : ps.params()) {
    const std::int64_t n = shape_numel(p->shape);
    for (const bool second : {false, true}) {
      const std::string key = (second ? "exp_avg_sq." : "exp_avg.") + p->name();
      auto it = optim.find(key);
      SK_CHECK(it != optim.end(), "checkpoint: '", where, "': tensor ", key, " missing (optimizer state of parameter ",
               p->name(), ")");
      SK_CHECK(it->second.dtype() == DType::f32 && it->second.numel() == n, "checkpoint: '", where, "': tensor ", key,
               " is ", it->second.str(), ", expected f32 with ", n, " elements");
      const std::vector<float> host = it->second.to_vector<float>();
      std::copy(host.begin(), host.end(), (second ? v : m).begin() + p->offset);
    }
  }
  opt.load_state(t, Tensor::from_vector(m, {ps.numel()}), Tensor::from_vector(v, {ps.numel()}));
  return s;
}

std::string resolve_model_weights(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SK_CHECK(fs::exists(st), "'", path, "': no such file or folder (expected a model.safetensors file, a checkpoint ",
           "step folder or a checkpoint dir)");
  fs::path step, model;
  if (fs::is_directory(st)) {
    step = path;
    if (fs::exists(step / "latest")) step = *latest_checkpoint(path);
    model = step / kModelFile;
    SK_CHECK(fs::is_regular_file(model), "'", path, "': a folder with neither a 'latest' file nor ", kModelFile,
             " (expected a model.safetensors file, a checkpoint step folder or a checkpoint dir)");
  } else {
    model = path;
    step = model.has_parent_path() ? model.parent_path() : fs::path(".");
  }
  // Checksums whenever an index.json is beside the file (a file inside a step folder included).
  const fs::path index = step / kIndexFile;
  if (fs::exists(index)) {
    const std::string name = model.filename().string();
    const CheckpointIndex idx = parse_checkpoint_index(read_bytes(index), index.string());
    SK_CHECK(
        std::any_of(idx.files.begin(), idx.files.end(), [&](const CheckpointIndex::File& f) { return f.name == name; }),
        "'", model.string(), "': the index.json beside it does not list ", name,
        " (the file does not belong to that checkpoint)");
    verify_checkpoint(step.string());
  } else {
    std::fprintf(stderr, "sinkhorn: note: loading '%s' without checksums (no index.json beside it)\n",
                 model.string().c_str());
    std::fflush(stderr);
  }
  return model.string();
}

std::string load_model_weights(const std::string& path, ParamSet& ps) {
  const std::string file = resolve_model_weights(path);
  load_params_file(ps, file, LoadOptions{/*require_all=*/true, /*allow_unexpected=*/false});
  return file;
}

}  // namespace sk
