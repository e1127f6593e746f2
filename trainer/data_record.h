// data_record.h — the data fingerprint (data/token_corpus.h) as JSON, for trainer.json, so that
// a resumed run can check it trains on the same data:
//
//   state_json["data"] = data_fingerprint_json(ds.fingerprint());            // when saving
//   data::check_same_data(data_fingerprint_from_json(saved["data"]), ds.fingerprint());  // on resume
//
//   {"format": "tokens", "val_fraction": 0.05, "shards": [{"role": "train", "path": "...",
//    "format": "llm.c", "dtype": "uint16", "tokens": 100000000, "file_bytes": 200001024,
//    "crc_head": 123, "crc_tail": 456}, ...]}
#pragma once
#include <nlohmann/json.hpp>

#include "data/token_corpus.h"

namespace sk {

nlohmann::json data_fingerprint_json(const data::DataFingerprint& f);
// Throws sk::Error naming the missing or mistyped field.
data::DataFingerprint data_fingerprint_from_json(const nlohmann::json& j);

}  // namespace sk
