// tokenizer.json's regexes are written for Oniguruma (Ruby syntax), the
// engine Hugging Face's tokenizers compile them with; we run them on PCRE2.
// The two agree on the syntax these patterns use but not on every class, so
// each pattern is rewritten before PCRE2 compiles it:
//
//   \s  \S     Unicode's White_Space (and its complement), listed: PCRE2's
//              \s also matches U+180E.
//   \p{X} \P{X} \p{^X}   for a general category X (short or long name),
//              PCRE2's class with the code points Unicode 15.0 to 16.0
//              assigned to X added (and those it took away removed):
//              PCRE2 10.42 has Unicode 14.0 tables, Oniguruma 16.0.
//   \d  \D     \p{Nd} and \P{Nd}, as above.
//   \h  \H     a hexadecimal digit [0-9A-Fa-f] and its complement
//              (Oniguruma's meaning; PCRE2's is horizontal space).
//   \v         U+000B only (PCRE2: any vertical space).
//   \uHHHH     \x{HHHH}.
//   [a[bc]]    a class nested in a class is its union: [abc].
// Inside a character class the rewritten items are inlined; an item that
// no class can hold (the complement of a category that gained characters)
// turns the class into an alternation that matches the same characters. A
// class with added characters looks for them only in characters PCRE2 has
// as unassigned (or recategorized): [\p{L}A] is written
// (?:[\p{L}]|(?=[\p{Cn}...])[A]), so that common characters are decided by
// the property alone.
//
// Case-insensitive matching of single characters is the same in both
// engines, for every code point PCRE2 10.42 knows. Not reproduced: \w, \W,
// \b and \B (Oniguruma's word characters are Alphabetic, marks, digits and
// connectors of Unicode 16.0; PCRE2's are letters, numbers and '_'), the
// anchors ^ and $ (line anchors in Ruby syntax), Ruby's (?m) (PCRE2's (?s)),
// multi-character case folds ("ß" matching (?i:ss)), other Unicode
// properties (scripts, binary properties) of Unicode 15.0 and later.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_REGEX_SYNTAX_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_REGEX_SYNTAX_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace entroserve::tokenizer {

// `pattern` rewritten for PCRE2 as above; UNIMPLEMENTED for Oniguruma's set
// operations in a class (&&, a negated nested class), which PCRE2 10.42
// cannot express. A pattern with none of the rewritten constructs is
// returned as it is; malformed patterns are left for PCRE2 to reject.
absl::StatusOr<std::string> OnigurumaToPcre2(std::string_view pattern);

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_REGEX_SYNTAX_H_
