#include "safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/core/backend.h"

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

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

void write_all(int fd, const void* p, std::size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    SK_CHECK(w > 0, "write_safetensors: cannot write ", path, ": ", std::strerror(errno));
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

Tensor host(const Tensor& t) { return t.device() == Device::cpu ? t : t.to(Device::cpu); }

}  // namespace

TensorMap read_safetensors(const std::string& path, Metadata* metadata, std::vector<std::string>* conversions) {
  std::ifstream f(path, std::ios::binary);
  SK_CHECK(f.good(), "read_safetensors: cannot open ", path);
  f.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(f.tellg());
  f.seekg(0);
  SK_CHECK(size >= 8, "read_safetensors: ", path, " is too short (", size, " bytes) to be a safetensors file");
  unsigned char lenb[8];
  f.read(reinterpret_cast<char*>(lenb), 8);
  const std::string foreign = foreign_format(lenb, size);
  SK_CHECK(foreign.empty(), "read_safetensors: ", path, " is not a safetensors file: ", foreign,
           "; export the weights with safetensors.torch.save_file(model.state_dict(), 'model.safetensors')");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | lenb[i];
  SK_CHECK(n <= size - 8, "read_safetensors: ", path, " is not a safetensors file: header length ", n,
           " exceeds the file size ", size);
  std::string hdr(static_cast<std::size_t>(n), '\0');
  f.read(hdr.data(), static_cast<std::streamsize>(n));
  SK_CHECK(f.good(), "read_safetensors: ", path, ": truncated header");
  json j;
  try {
    j = json::parse(hdr);
  } catch (const json::exception& e) {
    throw_error(cat("read_safetensors: ", path, ": header is not valid JSON: ", e.what()));
  }
  SK_CHECK(j.is_object(), "read_safetensors: ", path, ": header must be a JSON object");
  const std::uint64_t base = 8 + n, data_size = size - base;
  TensorMap out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (metadata) {
        SK_CHECK(it->is_object(), "read_safetensors: ", path, ": __metadata__ must be an object");
        for (auto m = it->begin(); m != it->end(); ++m)
          (*metadata)[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      }
      continue;
    }
    const json& info = *it;
    SK_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"),
             "read_safetensors: ", path, ": tensor '", name, "' needs dtype, shape and data_offsets");
    DType dt;
    const std::string dts = info["dtype"].is_string() ? info["dtype"].get<std::string>() : info["dtype"].dump();
    const bool wide = dts == "F16" || dts == "F64";  // read as stored, converted to F32 below
    if (wide) dt = DType::f32;
    SK_CHECK(wide || st_dtype_parse(dts, dt), "read_safetensors: ", path, ": tensor '", name, "' has unsupported dtype ",
             dts, " (supported: F32, BF16, I64, I32, U8; F16 and F64 are converted to F32)");
    Shape shape;
    SK_CHECK(info["shape"].is_array(), "read_safetensors: ", path, ": tensor '", name, "': shape must be a list");
    for (const auto& d : info["shape"]) {
      SK_CHECK(d.is_number_integer() && d.get<std::int64_t>() >= 0, "read_safetensors: ", path, ": tensor '", name,
               "': bad shape ", info["shape"].dump());
      shape.push_back(d.get<std::int64_t>());
    }
    const json& off = info["data_offsets"];
    SK_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
             "read_safetensors: ", path, ": tensor '", name, "': data_offsets must be [begin, end]");
    const auto b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
    const std::uint64_t want = static_cast<std::uint64_t>(shape_numel(shape)) * (dts == "F16" ? 2 : dts == "F64" ? 8 : dtype_size(dt));
    SK_CHECK(b <= e && e <= data_size, "read_safetensors: ", path, ": tensor '", name, "': data_offsets [", b, ", ", e,
             "] outside the data region of ", data_size, " bytes");
    SK_CHECK(e - b == want, "read_safetensors: ", path, ": tensor '", name, "': ", e - b, " bytes for ", dts,
             shape_str(shape), " (expected ", want, ")");
    Tensor t = Tensor::empty(shape, dt, Device::cpu);
    f.seekg(static_cast<std::streamoff>(base + b));
    if (wide) {
      std::vector<unsigned char> raw(static_cast<std::size_t>(want));
      if (want) f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(want));
      SK_CHECK(f.good(), "read_safetensors: ", path, ": tensor '", name, "': truncated data");
      float* dst = t.data<float>();
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        if (dts == "F16") {
          std::uint16_t h;
          std::memcpy(&h, raw.data() + 2 * i, 2);
          dst[i] = f16_to_f32(h);
        } else {
          double d;
          std::memcpy(&d, raw.data() + 8 * i, 8);
          dst[i] = static_cast<float>(d);
        }
      }
      if (conversions) conversions->push_back(cat("tensor '", name, "': ", dts, " -> F32"));
    } else if (want) {
      f.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(want));
    }
    SK_CHECK(f.good(), "read_safetensors: ", path, ": tensor '", name, "': truncated data");
    out.emplace(name, std::move(t));
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
    write_all(fd, lenb, 8, tmp);
    write_all(fd, hs.data(), hs.size(), tmp);
    for (const auto& h : hosts)
      if (h.nbytes()) write_all(fd, h.raw(), h.nbytes(), tmp);
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
    const Tensor* src = nullptr;
    std::string found;
    for (const auto& nm : p->names) {  // primary name first, then aliases
      auto it = tensors.find(nm);
      if (it == tensors.end()) continue;
      used[nm] = true;
      if (!src) {
        src = &it->second;
        found = nm;
      }
    }
    if (!src) {
      SK_CHECK(!opt.require_all, "load_params: parameter '", p->name(), "' ", shape_str(p->shape),
               " is missing (no tensor under any of its ", p->names.size(), " name(s))");
      rep.missing.push_back(p->name());
      continue;
    }
    SK_CHECK(src->shape() == p->shape, "load_params: tensor '", found, "' has shape ", shape_str(src->shape()),
             " but the parameter needs ", shape_str(p->shape));
    Tensor h = host(*src);
    if (h.dtype() == DType::bf16) {
      std::vector<std::uint16_t> raw = h.to_vector<std::uint16_t>();
      std::vector<float> f(raw.size());
      for (std::size_t i = 0; i < raw.size(); ++i) f[i] = bf16_to_f32(raw[i]);
      h = Tensor::from_vector(f, h.shape(), Device::cpu);
    }
    SK_CHECK(h.dtype() == DType::f32, "load_params: tensor '", found, "' is ", dtype_name(h.dtype()),
             "; parameters load from F32 or BF16");
    p->value.copy_from(h);
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
