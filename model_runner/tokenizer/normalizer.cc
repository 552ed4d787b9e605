#include "model_runner/tokenizer/normalizer.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <utility>

#include "absl/strings/str_replace.h"
#include "model_runner/tokenizer/ascii.h"
#include "sampler/base/utf8.h"

namespace entroserve::tokenizer {
namespace {

using Kind = NormalizerStep::Kind;

const icu::Normalizer2* IcuNormalizer(Kind kind, UErrorCode* error) {
  switch (kind) {
    case Kind::kNfc:
      return icu::Normalizer2::getNFCInstance(*error);
    case Kind::kNfd:
      return icu::Normalizer2::getNFDInstance(*error);
    case Kind::kNfkc:
      return icu::Normalizer2::getNFKCInstance(*error);
    default:
      return icu::Normalizer2::getNFKDInstance(*error);
  }
}

// NFC, NFD, NFKC or NFKD of *text, in place. ASCII is already normalized.
void NormalizeForm(Kind kind, std::string* text) {
  if (IsAscii(*text) || !IsValidUtf8(*text)) return;
  const icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(*text);
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = IcuNormalizer(kind, &error);
  if (U_FAILURE(error)) return;
  if (normalizer->isNormalized(unicode, error) && U_SUCCESS(error)) return;
  error = U_ZERO_ERROR;
  const icu::UnicodeString normalized = normalizer->normalize(unicode, error);
  if (U_FAILURE(error)) return;
  text->clear();
  normalized.toUTF8String(*text);
}

// Unicode lowercase (root locale) of *text, in place.
void Lowercase(std::string* text) {
  if (IsAscii(*text)) {
    for (char& c : *text) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return;
  }
  if (!IsValidUtf8(*text)) return;
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(*text);
  unicode.toLower(icu::Locale::getRoot());
  text->clear();
  unicode.toUTF8String(*text);
}

void Replace(const NormalizerStep& step, std::string* text) {
  if (!step.regex.has_value()) {
    if (!step.literal.empty()) *text = absl::StrReplaceAll(*text, {{step.literal, step.text}});
    return;
  }
  std::vector<std::pair<size_t, size_t>> matches;
  step.regex->FindAll(*text, &matches);
  std::string replaced;
  size_t last = 0;
  for (auto [begin, end] : matches) {
    replaced.append(*text, last, begin - last);
    replaced.append(step.text);
    last = end;
  }
  replaced.append(*text, last, std::string::npos);
  *text = std::move(replaced);
}

void Strip(const NormalizerStep& step, std::string* text) {
  size_t begin = 0, end = text->size();
  if (step.left) {
    while (begin < end && IsAsciiSpace((*text)[begin])) ++begin;
  }
  if (step.right) {
    while (end > begin && IsAsciiSpace((*text)[end - 1])) --end;
  }
  *text = text->substr(begin, end - begin);
}

void ApplyStep(const NormalizerStep& step, std::string* text) {
  switch (step.kind) {
    case Kind::kNfc:
    case Kind::kNfd:
    case Kind::kNfkc:
    case Kind::kNfkd:
      NormalizeForm(step.kind, text);
      break;
    case Kind::kLowercase:
      Lowercase(text);
      break;
    case Kind::kPrepend:
      if (!text->empty()) text->insert(0, step.text);
      break;
    case Kind::kReplace:
      Replace(step, text);
      break;
    case Kind::kStrip:
      Strip(step, text);
      break;
  }
}

}  // namespace

std::string Normalizer::Apply(std::string_view text) const {
  std::string out(text);
  for (const NormalizerStep& step : steps_) ApplyStep(step, &out);
  return out;
}

}  // namespace entroserve::tokenizer
