// UTF-8: validation, decoding, encoding and repair. The one implementation
// of the project: the tokenizer (model_runner/tokenizer), runnerd's checks
// of request text and samplerctl's traces all use it.
//
// Well-formed means Unicode's table 3-7: no overlong forms, no surrogates,
// nothing above U+10FFFF. Repair replaces each maximal invalid subsequence
// with one U+FFFD (Unicode's "substitution of maximal subparts", as Rust's
// String::from_utf8_lossy and the WHATWG decoder do), so "\xF0\x9F\x98" (an
// emoji cut short) becomes one U+FFFD, not three.
#ifndef ENTROSERVE_SAMPLER_BASE_UTF8_H_
#define ENTROSERVE_SAMPLER_BASE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace entroserve {

// U+FFFD REPLACEMENT CHARACTER, as a code point and in UTF-8.
inline constexpr uint32_t kReplacementCodepoint = 0xFFFD;
inline constexpr char kUtf8ReplacementCharacter[] = "\xEF\xBF\xBD";

// The sequence that starts at s[0] (size >= 1 bytes available): n > 0 for a
// complete well-formed character of n bytes; -k (k >= 1) for an invalid
// maximal subpart of k bytes; 0 when the bytes run out before a character
// that is well-formed so far is complete.
int Utf8SequenceLength(const unsigned char* s, size_t size);

// Byte length of the character at text[i] (i < text.size()); an invalid or
// truncated sequence counts as one byte.
size_t Utf8CharLength(std::string_view text, size_t i);

// The code point at text[*pos] (*pos < text.size()), advancing *pos past
// it; U+FFFD for an invalid or truncated sequence, advancing past its
// maximal subpart.
uint32_t DecodeUtf8(std::string_view text, size_t* pos);

// Appends the UTF-8 of `codepoint` (at most U+10FFFF) to `out`.
void AppendUtf8(uint32_t codepoint, std::string* out);

// Appends `bytes` to `out` with each maximal invalid subsequence replaced by
// U+FFFD. With `final` false, a character still incomplete at the end is
// left unconsumed (a stream may complete it). Returns the bytes consumed.
size_t AppendValidUtf8(std::string_view bytes, bool final, std::string* out);

// `bytes` repaired: AppendValidUtf8 of all of it.
std::string ToValidUtf8(std::string_view bytes);

bool IsValidUtf8(std::string_view text);

// OK when `text` is well-formed UTF-8; otherwise INVALID_ARGUMENT naming the
// byte offset of the first bad sequence ("text is not valid UTF-8: ...").
absl::Status ValidateUtf8(std::string_view text);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_BASE_UTF8_H_
