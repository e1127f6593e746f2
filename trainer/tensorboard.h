// tensorboard.h — TensorBoard event files ([log] tensorboard = true), written with libprotobuf
// (lite runtime) from our own minimal schema (trainer/tensorboard/event.proto, field numbers of
// TensorBoard's public event.proto / summary.proto). The protobuf headers stay inside
// tensorboard.cpp (tests/check_includes.sh enforces it); protobuf itself is linked statically with
// its symbols hidden, so it cannot clash with the protobuf copy inside libsentencepiece.
//
//   TensorBoardWriter tb(log_dir);          // <log_dir>/events.out.tfevents.<unix time>.<host>
//   tb.add_scalar("train/loss", step, loss);
//   tb.add_text("samples", step, text);
//   tb.flush();                             // also on destruction
//
// File format: TFRecord framing — per record: uint64 length (little-endian), uint32 masked
// CRC-32C of those 8 bytes, the serialized Event, uint32 masked CRC-32C of it; mask(c) =
// ((c >> 15) | (c << 17)) + 0xa282ead8. The first record is Event{wall_time, file_version =
// "brain.Event:2"}. A scalar is Summary.Value{tag, simple_value}; a text is Summary.Value{tag,
// metadata.plugin_data.plugin_name = "text", tensor = DT_STRING scalar}.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace sk {

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), and TFRecord's masked form.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);
std::uint32_t masked_crc32c(const void* data, std::size_t n);

// Seconds since the Unix epoch, as TensorBoard's wall_time.
double wall_time_now();

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new event file in it; throws sk::Error naming the path.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // wall_time < 0: now.
  void add_scalar(const std::string& tag, std::int64_t step, double value, double wall_time = -1.0);
  void add_text(const std::string& tag, std::int64_t step, const std::string& text, double wall_time = -1.0);
  void flush();  // to the OS (fflush); throws sk::Error when writing failed
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& bytes);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace sk
