#include "model_runner/tokenizer/json_fields.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace entroserve::tokenizer {

absl::Status FieldError(absl::string_view source, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", field, ": ", what));
}

absl::Status Unsupported(absl::string_view source, absl::string_view field,
                         absl::string_view what) {
  return absl::UnimplementedError(absl::StrCat(source, ": ", field, ": ", what));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return contents.str();
}

absl::StatusOr<Json> ParseJsonObject(std::string_view text, absl::string_view source) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    // Parse again with exceptions for the position in the message.
    try {
      Json ignored = Json::parse(text.begin(), text.end());
      (void)ignored;
    } catch (const Json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
    }
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON object at the top, got ", json.type_name()));
  }
  return json;
}

namespace {

// `object[key]` when it has the type `has_type` tests, `fallback` when it is
// absent or null; an error naming `field` and `expected` otherwise.
template <typename T>
absl::StatusOr<T> GetScalar(const Json& object, const char* key, T fallback,
                            absl::string_view source, absl::string_view field,
                            bool (Json::*has_type)() const noexcept, const char* expected) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!((*it).*has_type)()) {
    return FieldError(source, field,
                      absl::StrCat("expected ", expected, ", got ", it->type_name()));
  }
  return it->get<T>();
}

}  // namespace

absl::StatusOr<bool> GetBool(const Json& object, const char* key, bool fallback,
                             absl::string_view source, absl::string_view field) {
  return GetScalar(object, key, fallback, source, field, &Json::is_boolean, "a boolean");
}

absl::StatusOr<std::string> GetString(const Json& object, const char* key, absl::string_view source,
                                      absl::string_view field, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) return FieldError(source, field, "missing");
    return std::string();
  }
  if (!it->is_string()) {
    return FieldError(source, field, absl::StrCat("expected a string, got ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<int64_t> GetInt(const Json& object, const char* key, int64_t fallback,
                               absl::string_view source, absl::string_view field) {
  return GetScalar(object, key, fallback, source, field, &Json::is_number_integer, "an integer");
}

absl::StatusOr<Pattern> GetPattern(const Json& object, absl::string_view source,
                                   absl::string_view field) {
  auto it = object.find("pattern");
  if (it == object.end() || !it->is_object()) {
    return FieldError(source, field, "missing pattern {\"String\": ...} or {\"Regex\": ...}");
  }
  Pattern pattern;
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    pattern.text = s->get<std::string>();
  } else if (auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    pattern.text = r->get<std::string>();
    pattern.is_regex = true;
  } else {
    return FieldError(source, field, "pattern must hold a String or a Regex");
  }
  return pattern;
}

absl::Status ParseTypedObject(const Json& json, absl::string_view source, const std::string& field,
                              const char* sequence_key, const ParseOne& parse_one) {
  if (json.is_null()) return absl::OkStatus();
  if (!json.is_object()) return FieldError(source, field, "expected an object");
  absl::StatusOr<std::string> type = GetString(json, "type", source, field + ".type", true);
  if (!type.ok()) return type.status();
  if (*type != "Sequence") return parse_one(json, *type, field);
  auto list = json.find(sequence_key);
  if (list == json.end() || !list->is_array()) {
    return FieldError(source, absl::StrCat(field, ".", sequence_key), "missing list");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    absl::Status status =
        ParseTypedObject((*list)[i], source, absl::StrCat(field, ".", sequence_key, "[", i, "]"),
                         sequence_key, parse_one);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace entroserve::tokenizer
