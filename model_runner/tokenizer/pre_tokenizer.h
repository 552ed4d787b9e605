// Pre-tokenizers (tokenizer.json's "pre_tokenizer"): how a normalized text is
// cut into the pieces that BPE encodes one by one. Split (a regex or a
// string, with Hugging Face's five delimiter behaviours), Digits (a Split on
// \p{N}) and ByteLevel (an optional prefix space, then GPT-2's regex when
// use_regex is set). A Sequence is flattened into its steps, each applied to
// every piece the previous one left.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_PRE_TOKENIZER_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_PRE_TOKENIZER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model_runner/tokenizer/regex.h"

namespace entroserve::tokenizer {

// What Split does with the text its pattern matches (Hugging Face's
// SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel };
  Kind kind = Kind::kSplit;
  std::optional<Regex> regex;  // Split with a regex, or ByteLevel with use_regex
  std::string literal;         // Split with a String pattern
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;            // Split: the pieces are what does not match
  bool add_prefix_space = false;  // ByteLevel: a space before each piece
};

class PreTokenizer {
 public:
  void Add(PreTokenizerStep step);

  // The pieces of `text`, in order, none empty (replaces *pieces).
  void Apply(std::string_view text, std::vector<std::string>* pieces) const;

  // Whether a ByteLevel step is present: pieces are then encoded byte by
  // byte in GPT-2's alphabet.
  bool byte_level() const { return byte_level_; }

 private:
  std::vector<PreTokenizerStep> steps_;
  bool byte_level_ = false;
};

// Cuts `text` at `matches` (sorted, non-overlapping [begin, end) ranges) as
// `behavior` says, appending the non-empty pieces to `out`. With `invert`,
// the matches are the text between the ranges.
void SplitAtMatches(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches,
                    SplitBehavior behavior, bool invert, std::vector<std::string>* out);

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_PRE_TOKENIZER_H_
