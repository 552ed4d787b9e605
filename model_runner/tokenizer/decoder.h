// Decoders (tokenizer.json's "decoder"): the bytes each token stands for.
// Every supported decoder works token by token (ByteLevel, ByteFallback,
// Replace of a string, Metaspace, Fuse), so the bytes of each id are worked
// out once at load time; Strip and Metaspace's prefix space remove leading
// characters of the whole text, which Decode and StreamingDecoder apply.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_DECODER_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_DECODER_H_

#include <string>
#include <utility>
#include <vector>

#include "model_runner/tokenizer/vocabulary.h"

namespace entroserve::tokenizer {

struct DecoderSpec {
  bool byte_level = false;     // tokens are in GPT-2's byte alphabet
  bool byte_fallback = false;  // <0xNN> tokens are the byte 0xNN
  // (from, to) string replacements, in order (Replace, Metaspace).
  std::vector<std::pair<std::string, std::string>> replacements;
  int strip_leading = 0;  // how many leading strip_char the text loses
  char strip_char = ' ';
};

class TokenDecoder {
 public:
  // The bytes of every id of `vocabulary` as `spec` decodes them. Added
  // tokens decode to their content as it is.
  void Build(const DecoderSpec& spec, const Vocabulary& vocabulary);

  // The bytes of `id`, which must be a known id of the vocabulary.
  const std::string& bytes(int32_t id) const { return bytes_[id]; }
  int strip_leading() const { return strip_leading_; }
  char strip_char() const { return strip_char_; }

 private:
  std::vector<std::string> bytes_;
  int strip_leading_ = 0;
  char strip_char_ = ' ';
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_DECODER_H_
