// The "pre_tokenizer" section of tokenizer.json.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/byte_level.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve::tokenizer {
namespace {

using Kind = PreTokenizerStep::Kind;

absl::StatusOr<SplitBehavior> ParseSplitBehavior(const Json& json, absl::string_view source,
                                                 const std::string& field) {
  ASSIGN_OR_RETURN(const std::string name, GetString(json, "behavior", source, field, false));
  if (name.empty() || name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return FieldError(source, field, absl::StrCat("unknown split behavior \"", name, "\""));
}

absl::Status ParseSplit(const Json& json, absl::string_view source, const std::string& field,
                        PreTokenizerStep* step) {
  step->kind = Kind::kSplit;
  ASSIGN_OR_RETURN(const Pattern pattern, GetPattern(json, source, field));
  if (pattern.is_regex) {
    ASSIGN_OR_RETURN(step->regex, Regex::Compile(pattern.text, absl::StrCat(source, ": ", field,
                                                                            ".pattern.Regex")));
  } else {
    if (pattern.text.empty()) return FieldError(source, field, "empty String pattern");
    step->literal = pattern.text;
  }
  ASSIGN_OR_RETURN(step->behavior, ParseSplitBehavior(json, source, field + ".behavior"));
  ASSIGN_OR_RETURN(step->invert, GetBool(json, "invert", false, source, field + ".invert"));
  return absl::OkStatus();
}

absl::Status ParseByteLevel(const Json& json, absl::string_view source, const std::string& field,
                            PreTokenizerStep* step) {
  step->kind = Kind::kByteLevel;
  absl::StatusOr<bool> prefix =
      GetBool(json, "add_prefix_space", false, source, field + ".add_prefix_space");
  absl::StatusOr<bool> use_regex = GetBool(json, "use_regex", true, source, field + ".use_regex");
  RETURN_IF_ERROR(prefix.status());
  RETURN_IF_ERROR(use_regex.status());
  step->add_prefix_space = *prefix;
  if (*use_regex) {
    ASSIGN_OR_RETURN(step->regex, Regex::Compile(kGpt2Pattern, source));
  }
  return absl::OkStatus();
}

// Digits(individual_digits) is a Split on Unicode numerics.
absl::Status ParseDigits(const Json& json, absl::string_view source, const std::string& field,
                         PreTokenizerStep* step) {
  step->kind = Kind::kSplit;
  ASSIGN_OR_RETURN(const bool individual,
                   GetBool(json, "individual_digits", false, source, field + ".individual_digits"));
  ASSIGN_OR_RETURN(step->regex, Regex::Compile(individual ? R"(\p{N})" : R"(\p{N}+)", source));
  return absl::OkStatus();
}

// The step of a pre-tokenizer of type `type` (not Sequence).
absl::StatusOr<PreTokenizerStep> ParseStep(const Json& json, const std::string& type,
                                           absl::string_view source, const std::string& field) {
  PreTokenizerStep step;
  if (type == "Split") {
    RETURN_IF_ERROR(ParseSplit(json, source, field, &step));
  } else if (type == "ByteLevel") {
    RETURN_IF_ERROR(ParseByteLevel(json, source, field, &step));
  } else if (type == "Digits") {
    RETURN_IF_ERROR(ParseDigits(json, source, field, &step));
  } else {
    return Unsupported(source, field,
                       absl::StrCat("unsupported pre_tokenizer type \"", type, "\""));
  }
  return step;
}

}  // namespace

absl::Status ParsePreTokenizerSection(const Json& json, absl::string_view source,
                                      PreTokenizer* pre_tokenizer) {
  return ParseStepSection(json, "pre_tokenizer", "pretokenizers", source, ParseStep, pre_tokenizer);
}

}  // namespace entroserve::tokenizer
