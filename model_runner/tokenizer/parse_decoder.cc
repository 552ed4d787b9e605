// The "decoder" section of tokenizer.json.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve::tokenizer {
namespace {

// U+2581 LOWER ONE EIGHTH BLOCK, Metaspace's default replacement.
constexpr char kMetaspace[] = "\xE2\x96\x81";

absl::Status ParseReplace(const Json& json, absl::string_view source, const std::string& field,
                          DecoderSpec* spec) {
  ASSIGN_OR_RETURN(const Pattern pattern, GetPattern(json, source, field));
  if (pattern.is_regex) {
    return Unsupported(source, field, "Replace decoder with a Regex is not supported");
  }
  ASSIGN_OR_RETURN(std::string content,
                   GetString(json, "content", source, field + ".content", true));
  spec->replacements.emplace_back(pattern.text, std::move(content));
  return absl::OkStatus();
}

absl::Status ParseStrip(const Json& json, absl::string_view source, const std::string& field,
                        DecoderSpec* spec) {
  absl::StatusOr<std::string> content =
      GetString(json, "content", source, field + ".content", true);
  absl::StatusOr<int64_t> start = GetInt(json, "start", 0, source, field + ".start");
  absl::StatusOr<int64_t> stop = GetInt(json, "stop", 0, source, field + ".stop");
  for (const absl::Status& status : {content.status(), start.status(), stop.status()}) {
    RETURN_IF_ERROR(status);
  }
  if (content->size() != 1 || *start < 0 || *start > 16 || *stop != 0) {
    return Unsupported(source, field,
                       "only Strip of a one-byte character at the start (stop = 0) is supported");
  }
  spec->strip_char = (*content)[0];
  spec->strip_leading = static_cast<int>(*start);
  return absl::OkStatus();
}

absl::Status ParseMetaspace(const Json& json, absl::string_view source, const std::string& field,
                            DecoderSpec* spec) {
  ASSIGN_OR_RETURN(const std::string replacement,
                   GetString(json, "replacement", source, field + ".replacement", false));
  spec->replacements.emplace_back(replacement.empty() ? kMetaspace : replacement, " ");
  absl::StatusOr<std::string> scheme =
      GetString(json, "prepend_scheme", source, field + ".prepend_scheme", false);
  absl::StatusOr<bool> prefix =
      GetBool(json, "add_prefix_space", true, source, field + ".add_prefix_space");
  RETURN_IF_ERROR(scheme.status());
  RETURN_IF_ERROR(prefix.status());
  // The space Metaspace put before the first word comes off again.
  if (scheme->empty() ? *prefix : *scheme != "never") {
    spec->strip_char = ' ';
    spec->strip_leading = 1;
  }
  return absl::OkStatus();
}

// A decoder of type `type` (not Sequence), added to `spec`.
absl::Status ParseDecoder(const Json& json, const std::string& type, absl::string_view source,
                          const std::string& field, DecoderSpec* spec) {
  if (type == "ByteLevel") {
    spec->byte_level = true;
  } else if (type == "ByteFallback") {
    spec->byte_fallback = true;
  } else if (type == "Fuse") {
    // Concatenation is what decoding does anyway.
  } else if (type == "Replace") {
    return ParseReplace(json, source, field, spec);
  } else if (type == "Strip") {
    return ParseStrip(json, source, field, spec);
  } else if (type == "Metaspace") {
    return ParseMetaspace(json, source, field, spec);
  } else {
    return Unsupported(source, field, absl::StrCat("unsupported decoder type \"", type, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseDecoderSection(const Json& json, absl::string_view source, bool byte_level,
                                 const Vocabulary& vocabulary, TokenDecoder* decoder) {
  DecoderSpec spec;
  auto it = json.find("decoder");
  if (it != json.end() && !it->is_null()) {
    RETURN_IF_ERROR(ParseTypedObject(
        *it, source, "decoder", "decoders",
        [&](const Json& object, const std::string& type, const std::string& field) {
          return ParseDecoder(object, type, source, field, &spec);
        }));
  } else {
    spec.byte_level = byte_level;
  }
  decoder->Build(spec, vocabulary);
  return absl::OkStatus();
}

}  // namespace entroserve::tokenizer
