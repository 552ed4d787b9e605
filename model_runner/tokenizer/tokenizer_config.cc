#include "model_runner/tokenizer/tokenizer_config.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/json_fields.h"
#include "sampler/base/status_macros.h"

namespace entroserve {
namespace {

using tokenizer::FieldError;
using tokenizer::Json;

// An AddedToken-or-string field.
absl::StatusOr<std::string> GetTokenField(const Json& object, const char* key,
                                          absl::string_view source) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return FieldError(source, key, "expected a string or an object with \"content\"");
}

// "chat_template": a string, or [{"name": "default", "template": "..."},
// {"name": "tool_use", ...}].
absl::StatusOr<std::string> GetChatTemplate(const Json& json, absl::string_view source) {
  auto it = json.find("chat_template");
  if (it == json.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) {
    return FieldError(source, "chat_template",
                      absl::StrCat("expected a string or a list, got ", it->type_name()));
  }
  const Json* chosen = nullptr;
  for (const Json& entry : *it) {
    if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string()) {
      return FieldError(source, "chat_template",
                        "list entries must be objects with a \"template\" string");
    }
    if (chosen == nullptr) chosen = &entry;
    if (entry.value("name", std::string()) == "default") chosen = &entry;
  }
  return chosen == nullptr ? std::string() : (*chosen)["template"].get<std::string>();
}

}  // namespace

absl::StatusOr<TokenizerConfig> TokenizerConfig::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, tokenizer::ReadFile(path));
  return FromJson(text, path);
}

absl::StatusOr<TokenizerConfig> TokenizerConfig::FromJson(std::string_view json_text,
                                                          std::string_view source_view) {
  const std::string source(source_view);
  ASSIGN_OR_RETURN(const Json json, tokenizer::ParseJsonObject(json_text, source));
  TokenizerConfig config;
  for (auto [key, field] :
       {std::pair{"bos_token", &config.bos_token}, std::pair{"eos_token", &config.eos_token},
        std::pair{"pad_token", &config.pad_token}, std::pair{"unk_token", &config.unk_token}}) {
    ASSIGN_OR_RETURN(*field, GetTokenField(json, key, source));
  }
  for (auto [key, field] : {std::pair{"add_bos_token", &config.add_bos_token},
                            std::pair{"add_eos_token", &config.add_eos_token}}) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) continue;
    if (!it->is_boolean()) {
      return FieldError(source, key, absl::StrCat("expected a boolean, got ", it->type_name()));
    }
    *field = it->get<bool>();
  }
  ASSIGN_OR_RETURN(config.chat_template, GetChatTemplate(json, source));
  return config;
}

}  // namespace entroserve
