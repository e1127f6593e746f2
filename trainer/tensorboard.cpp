// tensorboard.cpp — see tensorboard.h. The only translation unit that includes protobuf headers.
#include "trainer/tensorboard.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "event.pb.h"
#include "model/core/error.h"

namespace sk {
namespace {

std::array<std::uint32_t, 256> crc32c_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}

std::string host_name() {
  char h[256] = {};
  if (::gethostname(h, sizeof h - 1) != 0 || h[0] == '\0') return "localhost";
  return h;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

std::uint32_t masked_crc32c(const void* data, std::size_t n) {
  const std::uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

double wall_time_now() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SK_CHECK(!ec, "tensorboard: cannot create folder '", dir, "': ", ec.message());
  const double now = wall_time_now();
  const std::string base =
      (std::filesystem::path(dir) / ("events.out.tfevents." + std::to_string(static_cast<long long>(now)) + "." +
                                     host_name()))
          .string();
  // Never append to another writer's file: "x" (O_EXCL); a second writer in the same second adds its pid.
  path_ = base;
  f_ = std::fopen(path_.c_str(), "wbx");
  if (!f_ && errno == EEXIST) {
    path_ = base + "." + std::to_string(::getpid());
    f_ = std::fopen(path_.c_str(), "wbx");
  }
  SK_CHECK(f_, "tensorboard: cannot create event file '", path_, "': ", std::strerror(errno));
  tensorboard::Event e;
  e.set_wall_time(now);
  e.set_file_version("brain.Event:2");
  write_record(e.SerializeAsString());
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::write_record(const std::string& bytes) {
  unsigned char len[8];
  const std::uint64_t n = bytes.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  unsigned char crc[2][4];
  const std::uint32_t c[2] = {masked_crc32c(len, 8), masked_crc32c(bytes.data(), bytes.size())};
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < 4; ++i) crc[k][i] = static_cast<unsigned char>(c[k] >> (8 * i));
  const bool ok = std::fwrite(len, 1, 8, f_) == 8 && std::fwrite(crc[0], 1, 4, f_) == 4 &&
                  std::fwrite(bytes.data(), 1, bytes.size(), f_) == bytes.size() && std::fwrite(crc[1], 1, 4, f_) == 4;
  SK_CHECK(ok, "tensorboard: cannot write to '", path_, "': ", std::strerror(errno));
}

void TensorBoardWriter::add_scalar(const std::string& tag, std::int64_t step, double value, double wall_time) {
  tensorboard::Event e;
  e.set_wall_time(wall_time < 0 ? wall_time_now() : wall_time);
  e.set_step(step);
  tensorboard::Summary::Value* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  write_record(e.SerializeAsString());
}

void TensorBoardWriter::add_text(const std::string& tag, std::int64_t step, const std::string& text, double wall_time) {
  tensorboard::Event e;
  e.set_wall_time(wall_time < 0 ? wall_time_now() : wall_time);
  e.set_step(step);
  tensorboard::Summary::Value* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  tensorboard::TensorProto* t = v->mutable_tensor();
  t->set_dtype(tensorboard::DT_STRING);
  t->mutable_tensor_shape();  // rank 0: a scalar string
  t->add_string_val(text);
  write_record(e.SerializeAsString());
}

void TensorBoardWriter::flush() {
  SK_CHECK(std::fflush(f_) == 0, "tensorboard: cannot write to '", path_, "': ", std::strerror(errno));
}

}  // namespace sk
