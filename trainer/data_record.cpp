// data_record.cpp — see data_record.h.
#include "trainer/data_record.h"

#include "model/core/error.h"

namespace sk {

nlohmann::json data_fingerprint_json(const data::DataFingerprint& f) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& s : f.shards)
    shards.push_back({{"role", s.role},
                      {"path", s.path},
                      {"format", s.format},
                      {"dtype", s.dtype},
                      {"tokens", s.tokens},
                      {"file_bytes", s.file_bytes},
                      {"crc_head", s.crc_head},
                      {"crc_tail", s.crc_tail}});
  return {{"format", f.format}, {"val_fraction", f.val_fraction}, {"shards", shards}};
}

data::DataFingerprint data_fingerprint_from_json(const nlohmann::json& j) {
  auto need = [](const nlohmann::json& o, const char* key, const char* what) -> const nlohmann::json& {
    SK_CHECK(o.is_object() && o.contains(key), "trainer.json: data fingerprint: ", what, " has no '", key, "'");
    return o.at(key);
  };
  try {
    data::DataFingerprint f;
    f.format = need(j, "format", "the record").get<std::string>();
    f.val_fraction = need(j, "val_fraction", "the record").get<double>();
    for (const auto& s : need(j, "shards", "the record")) {
      data::ShardFingerprint x;
      x.role = need(s, "role", "a shard").get<std::string>();
      x.path = need(s, "path", "a shard").get<std::string>();
      x.format = need(s, "format", "a shard").get<std::string>();
      x.dtype = need(s, "dtype", "a shard").get<std::string>();
      x.tokens = need(s, "tokens", "a shard").get<std::int64_t>();
      x.file_bytes = need(s, "file_bytes", "a shard").get<std::int64_t>();
      x.crc_head = need(s, "crc_head", "a shard").get<std::uint32_t>();
      x.crc_tail = need(s, "crc_tail", "a shard").get<std::uint32_t>();
      f.shards.push_back(std::move(x));
    }
    return f;
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("trainer.json: data fingerprint: ", e.what()));
  }
}

}  // namespace sk
