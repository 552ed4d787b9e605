// The "normalizer" section of tokenizer.json.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve::tokenizer {
namespace {

using Kind = NormalizerStep::Kind;

absl::Status ParseReplace(const Json& json, absl::string_view source, const std::string& field,
                          NormalizerStep* step) {
  ASSIGN_OR_RETURN(const Pattern pattern, GetPattern(json, source, field));
  ASSIGN_OR_RETURN(step->text, GetString(json, "content", source, field + ".content", true));
  if (!pattern.is_regex) {
    step->literal = pattern.text;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(step->regex, Regex::Compile(pattern.text, absl::StrCat(source, ": ", field)));
  return absl::OkStatus();
}

absl::Status ParseStrip(const Json& json, absl::string_view source, const std::string& field,
                        NormalizerStep* step) {
  absl::StatusOr<bool> left = GetBool(json, "strip_left", false, source, field + ".strip_left");
  absl::StatusOr<bool> right = GetBool(json, "strip_right", false, source, field + ".strip_right");
  RETURN_IF_ERROR(left.status());
  RETURN_IF_ERROR(right.status());
  step->left = *left;
  step->right = *right;
  return absl::OkStatus();
}

// The step of a normalizer of type `type` (not Sequence).
absl::StatusOr<NormalizerStep> ParseStep(const Json& json, const std::string& type,
                                         absl::string_view source, const std::string& field) {
  NormalizerStep step;
  if (type == "NFC") {
    step.kind = Kind::kNfc;
  } else if (type == "NFD") {
    step.kind = Kind::kNfd;
  } else if (type == "NFKC") {
    step.kind = Kind::kNfkc;
  } else if (type == "NFKD") {
    step.kind = Kind::kNfkd;
  } else if (type == "Lowercase") {
    step.kind = Kind::kLowercase;
  } else if (type == "Prepend") {
    step.kind = Kind::kPrepend;
    ASSIGN_OR_RETURN(step.text, GetString(json, "prepend", source, field + ".prepend", true));
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    RETURN_IF_ERROR(ParseReplace(json, source, field, &step));
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    RETURN_IF_ERROR(ParseStrip(json, source, field, &step));
  } else {
    return Unsupported(source, field, absl::StrCat("unsupported normalizer type \"", type, "\""));
  }
  return step;
}

}  // namespace

absl::Status ParseNormalizerSection(const Json& json, absl::string_view source,
                                    Normalizer* normalizer) {
  return ParseStepSection(json, "normalizer", "normalizers", source, ParseStep, normalizer);
}

}  // namespace entroserve::tokenizer
