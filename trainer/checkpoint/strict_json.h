// strict_json.h — JSON parsing for the files we read back (safetensors headers, index.json,
// trainer.json): like nlohmann::json::parse, but a repeated key in any object is an error instead of
// silently keeping one of the values, and every failure is one sk::Error naming `what`.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sk {

// Throws sk::Error "<what>: not valid JSON: ..." or "<what>: key '<k>' appears twice ...".
nlohmann::json parse_json_strict(std::string_view text, const std::string& what);

}  // namespace sk
