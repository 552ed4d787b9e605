#include "model_runner/tokenizer/byte_level.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "sampler/base/utf8.h"

namespace entroserve::tokenizer {
namespace {

struct ByteLevelAlphabet {
  std::string encoded[256];  // byte -> UTF-8 of its character
  int16_t decoded[512];      // codepoint (< 512) -> byte, -1 if none

  ByteLevelAlphabet() {
    std::fill(std::begin(decoded), std::end(decoded), -1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const int cp = printable ? b : 256 + next++;
      AppendUtf8(cp, &encoded[b]);
      decoded[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelAlphabet& Alphabet() {
  static const ByteLevelAlphabet* alphabet = new ByteLevelAlphabet();
  return *alphabet;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

const std::string& ByteLevelChar(unsigned char byte) { return Alphabet().encoded[byte]; }

std::string ByteLevelEncode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += Alphabet().encoded[c];
  return out;
}

std::string ByteLevelDecode(std::string_view token) {
  const ByteLevelAlphabet& alphabet = Alphabet();
  std::string out;
  out.reserve(token.size());
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    // Every character of the alphabet is below U+0200: one or two bytes.
    const int length = Utf8SequenceLength(s + i, token.size() - i);
    if (length <= 0 || length > 2) return std::string(token);
    const uint32_t cp = length == 1 ? s[i] : ((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
    if (cp >= 512 || alphabet.decoded[cp] < 0) return std::string(token);
    out.push_back(static_cast<char>(alphabet.decoded[cp]));
    i += length;
  }
  return out;
}

int ParseByteToken(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  const int high = HexDigit(token[3]);
  const int low = HexDigit(token[4]);
  if (high < 0 || low < 0) return -1;
  return high * 16 + low;
}

}  // namespace entroserve::tokenizer
