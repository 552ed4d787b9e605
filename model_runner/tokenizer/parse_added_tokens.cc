// The "added_tokens" section of tokenizer.json.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve::tokenizer {
namespace {

absl::StatusOr<AddedToken> ParseAddedToken(const Json& entry, absl::string_view source,
                                           const std::string& field) {
  if (!entry.is_object()) return FieldError(source, field, "expected an object");
  ASSIGN_OR_RETURN(const int64_t id, GetInt(entry, "id", -1, source, field + ".id"));
  if (id < 0 || id > INT32_MAX) {
    return FieldError(source, field + ".id", "missing or not a non-negative 32-bit id");
  }
  AddedToken token;
  token.id = static_cast<int32_t>(id);
  ASSIGN_OR_RETURN(token.content, GetString(entry, "content", source, field + ".content", true));
  if (token.content.empty()) return FieldError(source, field + ".content", "empty");
  for (auto [key, flag] :
       {std::pair{"special", &token.special}, std::pair{"lstrip", &token.lstrip},
        std::pair{"rstrip", &token.rstrip}, std::pair{"single_word", &token.single_word}}) {
    ASSIGN_OR_RETURN(*flag, GetBool(entry, key, false, source, absl::StrCat(field, ".", key)));
  }
  return token;
}

}  // namespace

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokensSection(const Json& json,
                                                                absl::string_view source) {
  std::vector<AddedToken> tokens;
  auto list = json.find("added_tokens");
  if (list == json.end() || list->is_null()) return tokens;
  if (!list->is_array()) return FieldError(source, "added_tokens", "expected a list");
  for (size_t i = 0; i < list->size(); ++i) {
    ASSIGN_OR_RETURN(AddedToken token,
                     ParseAddedToken((*list)[i], source, absl::StrCat("added_tokens[", i, "]")));
    tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace entroserve::tokenizer
