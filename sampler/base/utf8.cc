#include "sampler/base/utf8.h"

#include "absl/strings/str_format.h"

namespace entroserve {

int Utf8SequenceLength(const unsigned char* s, size_t size) {
  const unsigned char lead = s[0];
  if (lead < 0x80) return 1;
  int length;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) lo = 0x90;  // no overlong forms
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int i = 1; i < length; ++i) {
    if (static_cast<size_t>(i) >= size) return 0;
    const unsigned char c = s[i];
    const unsigned char min = i == 1 ? lo : 0x80;
    const unsigned char max = i == 1 ? hi : 0xBF;
    if (c < min || c > max) return -i;
  }
  return length;
}

size_t Utf8CharLength(std::string_view text, size_t i) {
  const int length =
      Utf8SequenceLength(reinterpret_cast<const unsigned char*>(text.data()) + i, text.size() - i);
  return length > 0 ? static_cast<size_t>(length) : 1;
}

uint32_t DecodeUtf8(std::string_view text, size_t* pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + *pos;
  const size_t size = text.size() - *pos;
  const int length = Utf8SequenceLength(s, size);
  if (length <= 0) {
    *pos += length == 0 ? size : static_cast<size_t>(-length);
    return kReplacementCodepoint;
  }
  *pos += length;
  static constexpr unsigned char kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  uint32_t codepoint = s[0] & kLeadMask[length];
  for (int i = 1; i < length; ++i) codepoint = (codepoint << 6) | (s[i] & 0x3F);
  return codepoint;
}

void AppendUtf8(uint32_t codepoint, std::string* out) {
  if (codepoint < 0x80) {
    out->push_back(static_cast<char>(codepoint));
  } else if (codepoint < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (codepoint >> 6)));
    out->push_back(static_cast<char>(0x80 | (codepoint & 0x3F)));
  } else if (codepoint < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (codepoint >> 12)));
    out->push_back(static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (codepoint & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (codepoint >> 18)));
    out->push_back(static_cast<char>(0x80 | ((codepoint >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (codepoint & 0x3F)));
  }
}

size_t AppendValidUtf8(std::string_view bytes, bool final, std::string* out) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    // ASCII fast path.
    size_t j = i;
    while (j < n && s[j] < 0x80) ++j;
    if (j > i) {
      out->append(bytes.data() + i, j - i);
      i = j;
      if (i == n) break;
    }
    const int length = Utf8SequenceLength(s + i, n - i);
    if (length > 0) {
      out->append(bytes.data() + i, length);
      i += length;
    } else if (length < 0) {
      out->append(kUtf8ReplacementCharacter);
      i += -length;
    } else {
      if (!final) return i;
      out->append(kUtf8ReplacementCharacter);
      i = n;
    }
  }
  return i;
}

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendValidUtf8(bytes, /*final=*/true, &out);
  return out;
}

namespace {

// The offset of the first ill-formed sequence, text.size() when none, and
// its Utf8SequenceLength in *length.
size_t FirstInvalid(std::string_view text, int* length) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    *length = Utf8SequenceLength(s + i, text.size() - i);
    if (*length <= 0) return i;
    i += *length;
  }
  return text.size();
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  int length = 0;
  return FirstInvalid(text, &length) == text.size();
}

absl::Status ValidateUtf8(std::string_view text) {
  int length = 0;
  const size_t i = FirstInvalid(text, &length);
  if (i == text.size()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("text is not valid UTF-8: %s sequence at byte %d (0x%02X)",
                      length == 0 ? "truncated" : "invalid", static_cast<int>(i),
                      static_cast<unsigned char>(text[i])));
}

}  // namespace entroserve
