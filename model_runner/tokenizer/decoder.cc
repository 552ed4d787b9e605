#include "model_runner/tokenizer/decoder.h"

#include "absl/strings/str_replace.h"
#include "model_runner/tokenizer/byte_level.h"

namespace entroserve::tokenizer {
namespace {

std::string ModelTokenBytes(const DecoderSpec& spec, const std::string& token) {
  if (spec.byte_fallback) {
    const int byte = ParseByteToken(token);
    if (byte >= 0) return std::string(1, static_cast<char>(byte));
  }
  std::string text = token;
  for (const auto& [from, to] : spec.replacements) text = absl::StrReplaceAll(text, {{from, to}});
  return spec.byte_level ? ByteLevelDecode(text) : text;
}

}  // namespace

void TokenDecoder::Build(const DecoderSpec& spec, const Vocabulary& vocabulary) {
  strip_leading_ = spec.strip_leading;
  strip_char_ = spec.strip_char;
  bytes_.assign(vocabulary.size(), std::string());
  for (int32_t id = 0; id < vocabulary.size(); ++id) {
    if (!vocabulary.Has(id, kIdKnown)) continue;
    const std::string& token = vocabulary.tokens[id];
    bytes_[id] = vocabulary.Has(id, kIdAdded) ? token : ModelTokenBytes(spec, token);
  }
}

}  // namespace entroserve::tokenizer
