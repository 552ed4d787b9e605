// The Unicode data the tokenizer's regexes need beyond what PCRE2 has:
// Hugging Face's tokenizers compile their regexes with Oniguruma, whose
// tables are Unicode 16.0, and whose \s is Unicode's White_Space; the PCRE2
// of Debian 12 (10.42) has Unicode 14.0 tables and a \s that also holds
// U+180E MONGOLIAN VOWEL SEPARATOR (no longer White_Space since Unicode
// 6.3). regex_syntax.cc rewrites the classes with these tables.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_UNICODE_TABLES_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_UNICODE_TABLES_H_

#include <cstdint>
#include <string_view>

#include "absl/types/span.h"

namespace entroserve::tokenizer {

// The code points first to last, both included.
struct CodepointRange {
  uint32_t first;
  uint32_t last;
};

// White_Space: U+0009-U+000D, U+0020, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 (Oniguruma's \s).
absl::Span<const CodepointRange> WhiteSpace();

// How a general category of Unicode 16.0 differs from the same category in
// PCRE2 10.42's Unicode 14.0: the code points it gained (assigned in Unicode
// 15.0, 15.1 or 16.0, or moved into it) and lost (assigned to another
// category, or moved out).
struct CategoryDelta {
  std::string_view name;       // "Lu"
  std::string_view long_name;  // "Uppercase_Letter"
  absl::Span<const CodepointRange> added;
  absl::Span<const CodepointRange> removed;
};

// The deltas of every general category (and LC, Lu | Ll | Lt).
absl::Span<const CategoryDelta> Categories();

// The delta of the general category `name`, short ("Lu", "L") or long
// ("Uppercase_Letter"), compared as Unicode's loose matching does (case,
// spaces, '-' and '_' ignored); nullptr when `name` is not a general
// category (a script, a binary property).
const CategoryDelta* FindCategory(std::string_view name);

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_UNICODE_TABLES_H_
