// The regular expressions of tokenizer.json (Split pre-tokenizers, Replace
// normalizers, ByteLevel's GPT-2 pattern): written for Oniguruma, rewritten
// so that their classes mean what they mean there (regex_syntax.h), and
// compiled with PCRE2 in UTF + UCP mode with JIT.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_REGEX_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_REGEX_H_

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace entroserve::tokenizer {

// A compiled pattern; immutable, shared by copies, usable from any thread.
class Regex {
 public:
  // INVALID_ARGUMENT "<where>: bad regex /<pattern>/ at offset N: <why>"
  // when PCRE2 rejects `pattern`; UNIMPLEMENTED for what regex_syntax.h
  // cannot rewrite.
  static absl::StatusOr<Regex> Compile(std::string_view pattern, absl::string_view where);

  // Appends the [begin, end) byte ranges of the successive non-overlapping,
  // non-empty matches in `text` to `matches`. Invalid UTF-8 in `text` never
  // matches, but does not stop the search.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;

 private:
  struct Code;
  explicit Regex(std::shared_ptr<const Code> code) : code_(std::move(code)) {}
  std::shared_ptr<const Code> code_;
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_REGEX_H_
