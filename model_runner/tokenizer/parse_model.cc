// The "model" section of tokenizer.json: a BPE vocabulary and its merges.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve::tokenizer {
namespace {

absl::Status CheckModelType(const Json& model, absl::string_view source) {
  auto type = model.find("type");
  if (type == model.end() || type->is_null()) {
    return FieldError(source, "model.type", "missing (expected \"BPE\")");
  }
  if (!type->is_string()) return FieldError(source, "model.type", "expected a string");
  const std::string name = type->get<std::string>();
  if (name != "BPE") {
    return Unsupported(source, "model.type",
                       absl::StrCat("unsupported model type \"", name, "\" (only BPE is)"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const std::string field = absl::StrCat("model.", key);
    ASSIGN_OR_RETURN(const std::string value, GetString(model, key, source, field, false));
    if (!value.empty()) {
      return Unsupported(source, field, absl::StrCat("\"", value, "\" is not supported"));
    }
  }
  return absl::OkStatus();
}

bool IsTokenId(const Json& value) {
  return value.is_number_integer() && value.get<int64_t>() >= 0 &&
         value.get<int64_t>() <= INT32_MAX;
}

absl::Status CheckVocabIds(const Json& model, absl::string_view source) {
  auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object()) {
    return FieldError(source, "model.vocab", "missing (expected an object token -> id)");
  }
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!IsTokenId(it.value())) {
      return FieldError(source, absl::StrCat("model.vocab[\"", it.key(), "\"]"),
                        "expected a non-negative 32-bit integer id");
    }
  }
  return absl::OkStatus();
}

// The field of the merge of rank `rank` (made only for an error: there are
// hundreds of thousands of merges).
std::string MergeField(size_t rank) { return absl::StrCat("model.merges[", rank, "]"); }

// The two tokens of a merge: "a b" or ["a", "b"].
absl::StatusOr<std::pair<std::string, std::string>> MergePair(const Json& merge,
                                                              absl::string_view source,
                                                              size_t rank) {
  if (merge.is_string()) {
    const std::string& line = merge.get_ref<const std::string&>();
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      return FieldError(source, MergeField(rank),
                        absl::StrCat("\"", line, "\" is not two tokens separated by a space"));
    }
    return std::pair{line.substr(0, space), line.substr(space + 1)};
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return std::pair{merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  return FieldError(source, MergeField(rank), "expected \"a b\" or [\"a\", \"b\"]");
}

absl::Status ParseMerge(const Json& merge, size_t rank, absl::string_view source,
                        const Vocabulary& vocabulary, BpeModel* bpe) {
  ASSIGN_OR_RETURN(const auto pair, MergePair(merge, source, rank));
  const auto& [left, right] = pair;
  int32_t ids[2];
  for (int side = 0; side < 2; ++side) {
    const std::string& token = side == 0 ? left : right;
    const std::optional<int32_t> id = vocabulary.Find(token);
    if (!id.has_value()) {
      return FieldError(source, MergeField(rank),
                        absl::StrCat("token \"", token, "\" is not in model.vocab"));
    }
    ids[side] = *id;
  }
  const std::optional<int32_t> merged = vocabulary.Find(left + right);
  if (!merged.has_value()) {
    return FieldError(source, MergeField(rank),
                      absl::StrCat("merged token \"", left, right, "\" is not in model.vocab"));
  }
  bpe->AddMerge(ids[0], ids[1], static_cast<int32_t>(rank), *merged);
  return absl::OkStatus();
}

// "merges": their rank is their position.
absl::Status ParseMerges(const Json& model, absl::string_view source, const Vocabulary& vocabulary,
                         BpeModel* bpe) {
  auto merges = model.find("merges");
  if (merges == model.end() || merges->is_null()) return absl::OkStatus();
  if (!merges->is_array()) return FieldError(source, "model.merges", "expected a list");
  bpe->ReserveMerges(merges->size());
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    RETURN_IF_ERROR(ParseMerge((*merges)[rank], rank, source, vocabulary, bpe));
  }
  return absl::OkStatus();
}

absl::Status ParseOptions(const Json& model, absl::string_view source, const Vocabulary& vocabulary,
                          BpeOptions* options) {
  absl::StatusOr<bool> ignore_merges =
      GetBool(model, "ignore_merges", false, source, "model.ignore_merges");
  absl::StatusOr<bool> byte_fallback =
      GetBool(model, "byte_fallback", false, source, "model.byte_fallback");
  absl::StatusOr<bool> fuse_unk = GetBool(model, "fuse_unk", false, source, "model.fuse_unk");
  absl::StatusOr<std::string> unk = GetString(model, "unk_token", source, "model.unk_token", false);
  for (const absl::Status& status :
       {ignore_merges.status(), byte_fallback.status(), fuse_unk.status(), unk.status()}) {
    RETURN_IF_ERROR(status);
  }
  options->ignore_merges = *ignore_merges;
  options->byte_fallback = *byte_fallback;
  options->fuse_unk = *fuse_unk;
  if (unk->empty()) return absl::OkStatus();
  const std::optional<int32_t> unk_id = vocabulary.Find(*unk);
  if (!unk_id.has_value()) {
    return FieldError(source, "model.unk_token",
                      absl::StrCat("\"", *unk, "\" is not in model.vocab"));
  }
  options->unk_id = *unk_id;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<const Json*> CheckModelSection(const Json& json, absl::string_view source) {
  auto model = json.find("model");
  if (model == json.end() || !model->is_object()) {
    return FieldError(source, "model", "missing (expected an object)");
  }
  RETURN_IF_ERROR(CheckModelType(*model, source));
  RETURN_IF_ERROR(CheckVocabIds(*model, source));
  return &*model;
}

absl::Status ParseModelSection(const Json& model, absl::string_view source,
                               const std::vector<AddedToken>& added, Vocabulary* vocabulary,
                               BpeModel* bpe) {
  const Json& vocab = model["vocab"];
  int64_t max_id = -1;
  for (const Json& id : vocab) max_id = std::max(max_id, id.get<int64_t>());
  for (const AddedToken& token : added) max_id = std::max<int64_t>(max_id, token.id);
  vocabulary->Resize(static_cast<int32_t>(max_id + 1));
  vocabulary->ids.reserve(vocab.size() + added.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    vocabulary->Set(it.key(), static_cast<int32_t>(it.value().get<int64_t>()), 0);
  }
  RETURN_IF_ERROR(ParseMerges(model, source, *vocabulary, bpe));
  RETURN_IF_ERROR(ParseOptions(model, source, *vocabulary, &bpe->options()));
  bpe->FindByteTokens(*vocabulary);
  return absl::OkStatus();
}

}  // namespace entroserve::tokenizer
