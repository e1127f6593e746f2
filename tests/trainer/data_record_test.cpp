// The data fingerprint through trainer.json's JSON: a round trip keeps every field, a changed
// shard read back from JSON is still named, malformed records are one-line errors.
#include <gtest/gtest.h>

#include "data/data_error.h"
#include "model/core/error.h"
#include "trainer/data_record.h"

namespace sk {
namespace {

data::DataFingerprint sample_fingerprint() {
  data::DataFingerprint f;
  f.format = "tokens";
  f.val_fraction = 0.05;
  f.shards.push_back({"train", "/d/a.bin", "llm.c", "uint16", 100, 1224, 0xdeadbeefu, 7u});
  f.shards.push_back({"val", "/d/v.npy", "npy", "int32", 50, 328, 1u, 0xffffffffu});
  return f;
}

TEST(DataRecord, JsonRoundTripKeepsEveryField) {
  const data::DataFingerprint f = sample_fingerprint();
  const nlohmann::json j = nlohmann::json::parse(data_fingerprint_json(f).dump());
  EXPECT_EQ(j["shards"][0]["crc_head"], 0xdeadbeefu);
  const data::DataFingerprint g = data_fingerprint_from_json(j);
  EXPECT_EQ(data_fingerprint_json(g), data_fingerprint_json(f));
  EXPECT_NO_THROW(data::check_same_data(g, f));
  data::DataFingerprint h = f;
  h.shards[1].crc_tail = 2;
  try {
    data::check_same_data(g, h);
    FAIL();
  } catch (const data::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("val shard 1 '/d/v.npy' has other content"), std::string::npos) << e.what();
  }
}

TEST(DataRecord, MalformedRecordsAreErrors) {
  nlohmann::json j = data_fingerprint_json(sample_fingerprint());
  j["shards"][0].erase("tokens");
  EXPECT_THROW(data_fingerprint_from_json(j), Error);
  j = data_fingerprint_json(sample_fingerprint());
  j["shards"][1]["tokens"] = "many";
  EXPECT_THROW(data_fingerprint_from_json(j), Error);
  EXPECT_THROW(data_fingerprint_from_json(nlohmann::json::array()), Error);
}

}  // namespace
}  // namespace sk
