// The "post_processor" section of tokenizer.json.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve::tokenizer {
namespace {

// The ids of the special token `name` of a template: those its
// "special_tokens" entry lists, else the vocabulary's id of `name`.
absl::StatusOr<std::vector<int32_t>> SpecialTokenIds(const Json& post, const std::string& name,
                                                     const Vocabulary& vocabulary,
                                                     absl::string_view source,
                                                     const std::string& where) {
  std::vector<int32_t> ids;
  auto special = post.find("special_tokens");
  if (special != post.end() && special->contains(name) && (*special)[name].contains("ids") &&
      (*special)[name]["ids"].is_array()) {
    for (const Json& id : (*special)[name]["ids"]) {
      if (!id.is_number_integer()) return FieldError(source, where, "bad special id");
      ids.push_back(id.get<int32_t>());
    }
    return ids;
  }
  const std::optional<int32_t> id = vocabulary.Find(name);
  if (!id.has_value()) {
    return FieldError(source, where, absl::StrCat("\"", name, "\" is not in the vocabulary"));
  }
  ids.push_back(*id);
  return ids;
}

// TemplateProcessing's "single": special tokens before and after the
// {"Sequence": ...} piece.
absl::Status ParseTemplate(const Json& post, absl::string_view source, const std::string& field,
                           const Vocabulary& vocabulary, PostProcessor* processor) {
  auto single = post.find("single");
  if (single == post.end() || !single->is_array()) {
    return FieldError(source, field + ".single", "missing list");
  }
  processor->prefix.clear();
  processor->suffix.clear();
  bool after_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& piece = (*single)[i];
    const std::string where = absl::StrCat(field, ".single[", i, "]");
    if (piece.contains("Sequence")) {
      after_sequence = true;
      continue;
    }
    if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id") ||
        !piece["SpecialToken"]["id"].is_string()) {
      return FieldError(source, where, "expected {\"SpecialToken\": {\"id\": ...}}");
    }
    const std::string name = piece["SpecialToken"]["id"].get<std::string>();
    ASSIGN_OR_RETURN(const std::vector<int32_t> ids,
                     SpecialTokenIds(post, name, vocabulary, source, where));
    std::vector<int32_t>& target = after_sequence ? processor->suffix : processor->prefix;
    target.insert(target.end(), ids.begin(), ids.end());
  }
  return absl::OkStatus();
}

// BertProcessing / RobertaProcessing: "cls" and "sep" are [token, id].
absl::Status ParseClsSep(const Json& post, absl::string_view source, const std::string& field,
                         PostProcessor* processor) {
  for (auto [key, target] :
       {std::pair{"cls", &processor->prefix}, std::pair{"sep", &processor->suffix}}) {
    auto it = post.find(key);
    if (it == post.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
      return FieldError(source, absl::StrCat(field, ".", key), "expected [token, id]");
    }
    *target = {(*it)[1].get<int32_t>()};
  }
  return absl::OkStatus();
}

// A post-processor of type `type` (not Sequence).
absl::Status ParsePostProcessor(const Json& post, const std::string& type, absl::string_view source,
                                const std::string& field, const Vocabulary& vocabulary,
                                PostProcessor* processor) {
  if (type == "TemplateProcessing")
    return ParseTemplate(post, source, field, vocabulary, processor);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    return ParseClsSep(post, source, field, processor);
  }
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only
  return Unsupported(source, field, absl::StrCat("unsupported post_processor type \"", type, "\""));
}

}  // namespace

absl::Status ParsePostProcessorSection(const Json& json, absl::string_view source,
                                       const Vocabulary& vocabulary,
                                       PostProcessor* post_processor) {
  auto it = json.find("post_processor");
  if (it == json.end()) return absl::OkStatus();
  return ParseTypedObject(
      *it, source, "post_processor", "processors",
      [&](const Json& object, const std::string& type, const std::string& field) {
        return ParsePostProcessor(object, type, source, field, vocabulary, post_processor);
      });
}

}  // namespace entroserve::tokenizer
