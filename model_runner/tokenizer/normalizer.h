// Normalizers (tokenizer.json's "normalizer"): what is done to each stretch
// of text between added tokens before it is split. A Sequence is flattened
// into its steps, applied in order.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_NORMALIZER_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_NORMALIZER_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model_runner/tokenizer/regex.h"

namespace entroserve::tokenizer {

struct NormalizerStep {
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kPrepend, kReplace, kStrip };
  Kind kind = Kind::kNfc;
  std::string text;            // Prepend: the prefix; Replace: the replacement
  std::string literal;         // Replace with a String pattern
  std::optional<Regex> regex;  // Replace with a Regex pattern
  bool left = false;           // Strip: leading ASCII whitespace
  bool right = false;          // Strip: trailing ASCII whitespace
};

class Normalizer {
 public:
  void Add(NormalizerStep step) { steps_.push_back(std::move(step)); }

  // `text` through every step. The Unicode forms and Lowercase leave text
  // that is not valid UTF-8 as it is (ICU would replace bytes).
  std::string Apply(std::string_view text) const;

 private:
  std::vector<NormalizerStep> steps_;
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_NORMALIZER_H_
