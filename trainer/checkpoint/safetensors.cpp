#include "safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/core/backend.h"
#include "trainer/checkpoint/strict_json.h"
#include "trainer/file_io.h"

namespace sk {

namespace {

using json = nlohmann::json;

const char* st_dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

bool st_dtype_parse(const std::string& s, DType& d) {
  if (s == "F32") d = DType::f32;
  else if (s == "BF16") d = DType::bf16;
  else if (s == "I32") d = DType::i32;
  else if (s == "I64") d = DType::i64;
  else if (s == "U8") d = DType::u8;
  else return false;
  return true;
}

// IEEE half -> float (subnormals, infinities and NaN included).
float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// What a file that is not safetensors looks like, for the message ("" when it looks like none).
std::string foreign_format(const unsigned char* b, std::uint64_t n) {
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4)
    return "it is a zip archive (torch.save's format since PyTorch 1.6)";
  if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) return "it is a Python pickle (torch.save's legacy format)";
  return "";
}

// Converts a tensor stored as F16 / F64 (raw bytes) into the F32 tensor `t`.
void widen(const std::string& stored, const unsigned char* raw, Tensor& t) {
  float* dst = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (stored == "F16") {
      std::uint16_t h;
      std::memcpy(&h, raw + 2 * i, 2);
      dst[i] = f16_to_f32(h);
    } else {
      double d;
      std::memcpy(&d, raw + 8 * i, 8);
      dst[i] = static_cast<float>(d);
    }
  }
}

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

Tensor host(const Tensor& t) { return t.device() == Device::cpu ? t : t.to(Device::cpu); }

// The values of a parameter tensor as f32 (BF16 widened); `name` for the message.
std::vector<float> as_f32(const Tensor& t, const std::string& name) {
  Tensor h = host(t);
  if (h.dtype() == DType::f32) return h.to_vector<float>();
  SK_CHECK(h.dtype() == DType::bf16, "load_params: tensor '", name, "' is ", dtype_name(h.dtype()),
           "; parameters load from F32 or BF16");
  const std::vector<std::uint16_t> raw = h.to_vector<std::uint16_t>();
  std::vector<float> f(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) f[i] = bf16_to_f32(raw[i]);
  return f;
}

}  // namespace

std::vector<SafetensorsEntry> parse_safetensors_header(std::string_view header, std::uint64_t data_size,
                                                       const std::string& what, Metadata* metadata) {
  const std::string where = cat("read_safetensors: ", what);
  const json j = parse_json_strict(header, where + ": header");
  SK_CHECK(j.is_object(), where, ": header must be a JSON object");
  std::vector<SafetensorsEntry> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      SK_CHECK(it->is_object(), where, ": __metadata__ must be an object of strings, got ", it->dump());
      for (auto m = it->begin(); m != it->end(); ++m) {
        SK_CHECK(m->is_string(), where, ": __metadata__ '", m.key(), "' must be a string, got ", m->dump());
        if (metadata) (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const json& info = *it;
    SK_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"),
             where, ": tensor '", name, "' needs dtype, shape and data_offsets");
    SafetensorsEntry e;
    e.name = name;
    const std::string dts = info["dtype"].is_string() ? info["dtype"].get<std::string>() : info["dtype"].dump();
    const bool wide = dts == "F16" || dts == "F64";  // read as stored, converted to F32 by the readers
    if (wide) {
      e.dtype = DType::f32;
      e.stored = dts;
    }
    SK_CHECK(wide || st_dtype_parse(dts, e.dtype), where, ": tensor '", name, "' has unsupported dtype ", dts,
             " (supported: F32, BF16, I64, I32, U8; F16 and F64 are converted to F32)");
    SK_CHECK(info["shape"].is_array(), where, ": tensor '", name, "': shape must be a list");
    // Element count and byte size in 64 bits without overflow (a huge shape must not wrap around
    // to a small allocation).
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : info["shape"]) {
      SK_CHECK(d.is_number_unsigned() && d.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX), where,
               ": tensor '", name, "': bad shape ", info["shape"].dump(), " (dimensions are integers >= 0)");
      const auto v = d.get<std::uint64_t>();
      overflow = overflow || __builtin_mul_overflow(numel, v, &numel);
      e.shape.push_back(static_cast<std::int64_t>(v));
    }
    std::uint64_t want = 0;
    const std::uint64_t elem = dts == "F16" ? 2 : dts == "F64" ? 8 : static_cast<std::uint64_t>(dtype_size(e.dtype));
    overflow = overflow || __builtin_mul_overflow(numel, elem, &want) ||
               want > static_cast<std::uint64_t>(INT64_MAX);
    SK_CHECK(!overflow, where, ": tensor '", name, "': shape ", info["shape"].dump(),
             " has more elements than 64-bit sizes can count");
    const json& off = info["data_offsets"];
    SK_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), where,
             ": tensor '", name, "': data_offsets must be [begin, end]");
    e.begin = off[0].get<std::uint64_t>();
    e.end = off[1].get<std::uint64_t>();
    SK_CHECK(e.begin <= e.end && e.end <= data_size, where, ": tensor '", name, "': data_offsets [", e.begin, ", ",
             e.end, "] outside the data region of ", data_size, " bytes");
    SK_CHECK(e.end - e.begin == want, where, ": tensor '", name, "': ", e.end - e.begin, " bytes for ", dts,
             shape_str(e.shape), " (expected ", want, ")");
    out.push_back(std::move(e));
  }
  // The byte ranges tile the data region: no overlap (two tensors sharing bytes), no gap.
  std::vector<const SafetensorsEntry*> order;
  for (const auto& e : out) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t at = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry* e : order) {
    SK_CHECK(e->begin >= at, where, ": tensors '", prev ? prev->name : "", "' and '", e->name,
             "' overlap (byte ranges [", prev ? prev->begin : 0, ", ", at, ") and [", e->begin, ", ", e->end, "))");
    SK_CHECK(e->begin == at, where, ": bytes [", at, ", ", e->begin,
             ") of the data region belong to no tensor (before '", e->name, "')");
    at = e->end;
    if (e->end > e->begin || !prev) prev = e;
  }
  SK_CHECK(at == data_size, where, ": bytes [", at, ", ", data_size, ") of the data region belong to no tensor");
  return out;
}

namespace {

// Reads the 8-byte little-endian header length of a file of `size` bytes (a torch.save file is
// named as such first).
std::uint64_t header_length(const unsigned char* lenb, std::uint64_t size, const std::string& what) {
  const std::string foreign = foreign_format(lenb, size);
  SK_CHECK(foreign.empty(), "read_safetensors: ", what, " is not a safetensors file: ", foreign,
           "; export the weights with safetensors.torch.save_file(model.state_dict(), 'model.safetensors')");
  SK_CHECK(size >= 8, "read_safetensors: ", what, " is too short (", size, " bytes) to be a safetensors file");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | lenb[i];
  SK_CHECK(n <= size - 8, "read_safetensors: ", what, " is not a safetensors file: header length ", n,
           " exceeds the file size ", size);
  return n;
}

}  // namespace

TensorMap parse_safetensors(std::string_view bytes, const std::string& what, Metadata* metadata) {
  const std::uint64_t size = bytes.size();
  const std::uint64_t n = header_length(reinterpret_cast<const unsigned char*>(bytes.data()), size, what);
  const std::uint64_t base = 8 + n;
  TensorMap out;
  for (const SafetensorsEntry& e : parse_safetensors_header(bytes.substr(8, n), size - base, what, metadata)) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu);
    const auto* src = reinterpret_cast<const unsigned char*>(bytes.data() + base + e.begin);
    if (!e.stored.empty()) widen(e.stored, src, t);
    else if (e.end > e.begin) std::memcpy(t.raw(), src, e.end - e.begin);
    out.emplace(e.name, std::move(t));
  }
  return out;
}

TensorMap read_safetensors(const std::string& path, Metadata* metadata, std::vector<std::string>* conversions) {
  std::ifstream f(path, std::ios::binary);
  SK_CHECK(f.good(), "read_safetensors: cannot open ", path);
  f.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(f.tellg());
  f.seekg(0);
  unsigned char lenb[8] = {};
  f.read(reinterpret_cast<char*>(lenb), static_cast<std::streamsize>(std::min<std::uint64_t>(size, 8)));
  f.clear();
  const std::uint64_t n = header_length(lenb, size, path);
  std::string hdr(static_cast<std::size_t>(n), '\0');
  f.read(hdr.data(), static_cast<std::streamsize>(n));
  SK_CHECK(f.good(), "read_safetensors: ", path, ": truncated header");
  const std::uint64_t base = 8 + n;
  TensorMap out;
  for (const SafetensorsEntry& e : parse_safetensors_header(hdr, size - base, path, metadata)) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu);
    f.seekg(static_cast<std::streamoff>(base + e.begin));
    if (!e.stored.empty()) {
      std::vector<unsigned char> raw(static_cast<std::size_t>(e.end - e.begin));
      if (!raw.empty()) f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
      SK_CHECK(f.good(), "read_safetensors: ", path, ": tensor '", e.name, "': truncated data");
      widen(e.stored, raw.data(), t);
      if (conversions) conversions->push_back(cat("tensor '", e.name, "': ", e.stored, " -> F32"));
    } else if (e.end > e.begin) {
      f.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(e.end - e.begin));
    }
    SK_CHECK(f.good(), "read_safetensors: ", path, ": tensor '", e.name, "': truncated data");
    out.emplace(e.name, std::move(t));
  }
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  json hdr = json::object();
  std::vector<Tensor> hosts;
  std::uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    SK_CHECK(name != "__metadata__", "write_safetensors: '__metadata__' is not a valid tensor name");
    SK_CHECK(t.defined(), "write_safetensors: tensor '", name, "' is undefined");
    Tensor h = host(t);
    json shape = json::array();
    for (auto d : h.shape()) shape.push_back(d);
    hdr[name] = {{"dtype", st_dtype_name(h.dtype())}, {"shape", shape}, {"data_offsets", {off, off + h.nbytes()}}};
    off += h.nbytes();
    hosts.push_back(std::move(h));
  }
  if (!metadata.empty()) hdr["__metadata__"] = metadata;
  std::string hs = hdr.dump();
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');
  unsigned char lenb[8];
  std::uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) lenb[i] = static_cast<unsigned char>(n >> (8 * i));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SK_CHECK(fd >= 0, "write_safetensors: cannot create ", tmp, ": ", std::strerror(errno));
  try {
    write_all_fd(fd, lenb, 8, tmp, "write_safetensors");
    write_all_fd(fd, hs.data(), hs.size(), tmp, "write_safetensors");
    for (const auto& h : hosts)
      if (h.nbytes()) write_all_fd(fd, h.raw(), h.nbytes(), tmp, "write_safetensors");
    SK_CHECK(::fsync(fd) == 0, "write_safetensors: fsync of ", tmp, " failed: ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  SK_CHECK(::close(fd) == 0, "write_safetensors: closing ", tmp, " failed: ", std::strerror(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_error(cat("write_safetensors: cannot rename ", tmp, " to ", path, ": ", std::strerror(err)));
  }
  int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

LoadReport load_params(ParamSet& ps, const TensorMap& tensors, const LoadOptions& opt) {
  SK_CHECK(ps.finalized(), "load_params: the ParamSet must be finalized (allocated) first");
  LoadReport rep;
  std::map<std::string, bool> used;
  for (const auto& kv : tensors) used[kv.first] = false;
  for (const auto& p : ps.params()) {
    std::vector<std::pair<std::string, const Tensor*>> present;  // primary name first, then aliases
    for (const auto& nm : p->names) {
      auto it = tensors.find(nm);
      if (it == tensors.end()) continue;
      used[nm] = true;
      present.emplace_back(nm, &it->second);
    }
    if (present.empty()) {
      SK_CHECK(!opt.require_all, "load_params: parameter '", p->name(), "' ", shape_str(p->shape),
               " is missing (no tensor under any of its ", p->names.size(), " name(s))");
      rep.missing.push_back(p->name());
      continue;
    }
    const auto& [found, src] = present.front();
    SK_CHECK(src->shape() == p->shape, "load_params: tensor '", found, "' has shape ", shape_str(src->shape()),
             " but the parameter needs ", shape_str(p->shape));
    const std::vector<float> values = as_f32(*src, found);
    // Every other name of the same tied parameter must hold the same tensor.
    for (std::size_t k = 1; k < present.size(); ++k) {
      const auto& [nm, t] = present[k];
      SK_CHECK(t->shape() == src->shape(), "load_params: tensors '", found, "' ", shape_str(src->shape()), " and '", nm,
               "' ", shape_str(t->shape()),
               " are one tied parameter of this model (weight_tie) but have different shapes");
      const std::vector<float> other = as_f32(*t, nm);
      for (std::size_t i = 0; i < values.size(); ++i)
        SK_CHECK(std::memcmp(&values[i], &other[i], sizeof(float)) == 0, "load_params: tensors '", found, "' and '", nm,
                 "' are one tied parameter of this model (weight_tie) but hold different values (element ", i, ": ",
                 values[i], " vs ", other[i], "): the file is not of this model (an untied checkpoint?)");
    }
    p->value.copy_from(Tensor::from_vector(values, src->shape(), Device::cpu));
    rep.loaded.push_back(p->name());
  }
  for (auto& b : ps.buffers()) {
    auto it = tensors.find(b->name);
    if (it == tensors.end()) {
      SK_CHECK(!opt.require_all, "load_params: buffer '", b->name, "' ", b->value.str(), " is missing");
      rep.missing.push_back(b->name);
      continue;
    }
    used[b->name] = true;
    const Tensor& t = it->second;
    SK_CHECK(t.shape() == b->value.shape(), "load_params: buffer '", b->name, "' has shape ", shape_str(t.shape()),
             " but needs ", shape_str(b->value.shape()));
    SK_CHECK(t.dtype() == b->value.dtype(), "load_params: buffer '", b->name, "' is ", dtype_name(t.dtype()),
             " but needs ", dtype_name(b->value.dtype()));
    b->value.copy_from(t);
    rep.loaded.push_back(b->name);
  }
  for (const auto& [name, u] : used) {
    if (u) continue;
    SK_CHECK(opt.allow_unexpected, "load_params: tensor '", name, "' does not name any parameter or buffer of the model");
    rep.unexpected.push_back(name);
  }
  return rep;
}

LoadReport load_params_file(ParamSet& ps, const std::string& path, const LoadOptions& opt) {
  try {
    return load_params(ps, read_safetensors(path), opt);
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
}

TensorMap params_by_name(ParamSet& ps, bool with_aliases, bool with_buffers) {
  TensorMap m;
  for (const auto& p : ps.params()) {
    if (with_aliases)
      for (const auto& nm : p->names) m[nm] = p->value;
    else
      m[p->name()] = p->value;
  }
  if (with_buffers)
    for (auto& b : ps.buffers()) m[b->name] = b->value;
  return m;
}

TensorMap grads_by_name(ParamSet& ps, const std::string& prefix, bool with_aliases) {
  TensorMap m;
  for (const auto& p : ps.params()) {
    if (with_aliases)
      for (const auto& nm : p->names) m[prefix + nm] = p->grad;
    else
      m[prefix + p->name()] = p->grad;
  }
  return m;
}

void save_params_file(const std::string& path, ParamSet& ps, bool with_aliases, const Metadata& metadata) {
  write_safetensors(path, params_by_name(ps, with_aliases, true), metadata);
}

}  // namespace sk
