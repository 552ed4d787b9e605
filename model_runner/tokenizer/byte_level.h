// GPT-2's byte-level alphabet (bytes_to_unicode in openai/gpt-2's
// encoder.py): every byte is written as one printable character, so that a
// vocabulary of strings covers any bytes. Printable Latin-1 bytes stand for
// themselves, the others for U+0100 onwards in byte order (the space 0x20 is
// "Ġ", U+0120).
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_BYTE_LEVEL_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_BYTE_LEVEL_H_

#include <string>
#include <string_view>

namespace entroserve::tokenizer {

// The pattern that the ByteLevel pre-tokenizer splits with when use_regex is
// set (GPT-2's).
inline constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The UTF-8 of the character that stands for `byte`.
const std::string& ByteLevelChar(unsigned char byte);

// `bytes` written in the alphabet, one character per byte.
std::string ByteLevelEncode(std::string_view bytes);

// The bytes a byte-level token stands for. A token with a character outside
// the alphabet (an added token's own text) is returned as it is, as the
// Hugging Face ByteLevel decoder does.
std::string ByteLevelDecode(std::string_view token);

// "<0x0A>" -> 0x0A; -1 when `token` is not a byte-fallback token.
int ParseByteToken(std::string_view token);

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_BYTE_LEVEL_H_
