// Type-checked access to the fields of tokenizer.json and
// tokenizer_config.json: a malformed file is an error naming the file and the
// field ("tokenizer.json: model.merges[3]: ..."), never an exception.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_JSON_FIELDS_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_JSON_FIELDS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace entroserve::tokenizer {

using Json = nlohmann::json;

// INVALID_ARGUMENT "<source>: <field>: <what>".
absl::Status FieldError(absl::string_view source, absl::string_view field, absl::string_view what);
// UNIMPLEMENTED "<source>: <field>: <what>".
absl::Status Unsupported(absl::string_view source, absl::string_view field, absl::string_view what);

// The contents of the file at `path`: NOT_FOUND naming it when it cannot be
// opened.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// `text` parsed; INVALID_ARGUMENT naming `source` when it is not JSON or not
// an object.
absl::StatusOr<Json> ParseJsonObject(std::string_view text, absl::string_view source);

// `object[key]` as a bool / string / integer; `fallback` (or "") when absent
// or null; a value of another type is an error naming `field`. A required
// string that is absent is an error too.
absl::StatusOr<bool> GetBool(const Json& object, const char* key, bool fallback,
                             absl::string_view source, absl::string_view field);
absl::StatusOr<std::string> GetString(const Json& object, const char* key, absl::string_view source,
                                      absl::string_view field, bool required);
absl::StatusOr<int64_t> GetInt(const Json& object, const char* key, int64_t fallback,
                               absl::string_view source, absl::string_view field);

// A {"String": "..."} or {"Regex": "..."} pattern (Split, Replace).
struct Pattern {
  std::string text;
  bool is_regex = false;
};
absl::StatusOr<Pattern> GetPattern(const Json& object, absl::string_view source,
                                   absl::string_view field);

// A section object with a "type" (a normalizer, pre-tokenizer, decoder or
// post-processor; null: nothing to do). A Sequence's members, its list
// `sequence_key`, are parsed the same way in order, with field paths
// "field.key[i]"; any other type goes to `parse_one`. Stops at the first
// error.
using ParseOne = std::function<absl::Status(const Json& object, const std::string& type,
                                            const std::string& field)>;
absl::Status ParseTypedObject(const Json& json, absl::string_view source, const std::string& field,
                              const char* sequence_key, const ParseOne& parse_one);

// The section `key` of `json` (absent: nothing to do) as a list of steps:
// each member that is not a Sequence becomes parse_step(object, type,
// source, field), an absl::StatusOr of a step, added to *steps in order.
template <typename Steps, typename ParseStep>
absl::Status ParseStepSection(const Json& json, const char* key, const char* sequence_key,
                              absl::string_view source, const ParseStep& parse_step, Steps* steps) {
  auto it = json.find(key);
  if (it == json.end()) return absl::OkStatus();
  return ParseTypedObject(
      *it, source, key, sequence_key,
      [&](const Json& object, const std::string& type, const std::string& field) -> absl::Status {
        auto step = parse_step(object, type, source, field);
        if (!step.ok()) return step.status();
        steps->Add(*std::move(step));
        return absl::OkStatus();
      });
}

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_JSON_FIELDS_H_
