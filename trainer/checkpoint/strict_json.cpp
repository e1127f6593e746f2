// strict_json.cpp — see strict_json.h.
#include "trainer/checkpoint/strict_json.h"

#include <set>
#include <vector>

#include "model/core/error.h"

namespace sk {

nlohmann::json parse_json_strict(std::string_view text, const std::string& what) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string duplicate;
  json::parser_callback_t cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    throw Error(cat(what, ": not valid JSON: ", e.what()));
  }
  SK_CHECK(duplicate.empty(), what, ": key '", duplicate, "' appears twice in one object (ambiguous)");
  return j;
}

}  // namespace sk
