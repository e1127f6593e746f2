// validation.cpp — see validation.h.
#include "data/validation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "data/data_error.h"

namespace sk::data {

std::vector<std::int64_t> validation_offsets(const std::vector<std::int64_t>& seg, std::int64_t T,
                                             std::int64_t count) {
  if (T < 1) throw DataError("validation windows: seq_len must be >= 1, got " + std::to_string(T));
  if (count < 0) throw DataError("validation windows: count must be >= 0 (0 = the whole split), got " + std::to_string(count));
  std::vector<std::int64_t> begin, starts;  // per segment: offset in the concatenation, valid starts
  std::int64_t pos = 0, total_starts = 0;
  for (std::int64_t n : seg) {
    begin.push_back(pos);
    starts.push_back(n >= T + 1 ? n - T : 0);
    total_starts += starts.back();
    pos += n;
  }
  if (total_starts == 0)
    throw DataError("validation windows: the validation split (" + std::to_string(pos) +
                    " tokens) holds no window of seq_len + 1 = " + std::to_string(T + 1) + " tokens");
  std::vector<std::int64_t> out;
  if (count == 0) {
    for (std::size_t k = 0; k < seg.size(); ++k)
      if (starts[k] > 0)
        for (std::int64_t c = 0; c < (seg[k] - 1) / T; ++c) out.push_back(begin[k] + c * T);
    return out;
  }
  out.reserve(static_cast<std::size_t>(count));
  std::size_t k = 0;
  std::int64_t before = 0;  // valid starts of segments < k
  for (std::int64_t i = 0; i < count; ++i) {
    const auto u = static_cast<std::int64_t>(static_cast<__int128>(i) * total_starts / count);
    while (u >= before + starts[k]) before += starts[k++];  // u is non-decreasing in i
    out.push_back(begin[k] + (u - before));
  }
  return out;
}

std::vector<std::int64_t> validation_offsets(std::int64_t corpus_tokens, std::int64_t seq_len, std::int64_t count) {
  return validation_offsets(std::vector<std::int64_t>{corpus_tokens}, seq_len, count);
}

double bits_per_byte(double loss, double bytes_per_token) {
  if (!(bytes_per_token > 0.0) || !std::isfinite(bytes_per_token))
    throw DataError("bits per byte: bytes per token must be > 0, got " + std::to_string(bytes_per_token));
  return loss / std::log(2.0) / bytes_per_token;
}

}  // namespace sk::data
