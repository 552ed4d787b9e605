#include "model_runner/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_format.h"
#include "model_runner/tokenizer/regex_syntax.h"
#include "sampler/base/utf8.h"

namespace entroserve::tokenizer {

struct Regex::Code {
  explicit Code(pcre2_code* code) : code(code) {}
  ~Code() { pcre2_code_free(code); }
  Code(const Code&) = delete;
  Code& operator=(const Code&) = delete;
  pcre2_code* code;
};

absl::StatusOr<Regex> Regex::Compile(std::string_view pattern, absl::string_view where) {
  absl::StatusOr<std::string> translated = OnigurumaToPcre2(pattern);
  if (!translated.ok()) {
    return absl::UnimplementedError(
        absl::StrFormat("%s: regex /%s/: %s", where, pattern, translated.status().message()));
  }
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // MATCH_INVALID_UTF: invalid UTF-8 in the subject never matches but does
  // not fail the match, so any bytes can be tokenized.
  pcre2_code* code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(translated->data()), translated->size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    // The offset is in the pattern PCRE2 read, quoted when it differs.
    const std::string read_as =
        *translated == pattern ? "" : absl::StrFormat(" (read as /%s/)", *translated);
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: bad regex /%s/%s at offset %d: %s", where, pattern, read_as,
                        static_cast<int>(error_offset), reinterpret_cast<const char*>(message)));
  }
  // JIT is an optimization only: a failure leaves the interpreter.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Regex(std::make_shared<const Code>(code));
}

void Regex::FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const {
  pcre2_code* regex = code_->code;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(regex, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  uint32_t options = 0;
  while (offset <= text.size()) {
    int rc = pcre2_match(regex, subject, text.size(), offset, options, data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(regex, subject, text.size(), offset, options | PCRE2_NO_JIT, data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH && options != 0) {
      // No non-empty match at an empty match's position: step one character.
      if (offset >= text.size()) break;
      offset += Utf8CharLength(text, offset);
      options = 0;
      continue;
    }
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) matches->emplace_back(begin, end);
    offset = end;
    options = end == begin ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  }
  pcre2_match_data_free(data);
}

}  // namespace entroserve::tokenizer
