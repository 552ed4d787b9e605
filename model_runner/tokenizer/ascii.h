// ASCII character tests shared by the tokenizer's parts.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_ASCII_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_ASCII_H_

#include <string_view>

namespace entroserve::tokenizer {

// Space, tab, line feed, carriage return, vertical tab, form feed.
inline bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

inline bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_ASCII_H_
