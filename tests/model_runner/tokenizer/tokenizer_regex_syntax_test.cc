// Unit tests of model_runner/tokenizer/regex_syntax.h: what PCRE2 is given
// for Oniguruma's classes. What the rewritten patterns match is checked
// against Hugging Face's engine by tokenizer_conformance_test.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model_runner/tokenizer/regex_syntax.h"

namespace entroserve::tokenizer {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kWhiteSpace[] =
    R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}-\x{2029}\x{202F})"
    R"(\x{205F}\x{3000})";

std::string Translated(const std::string& pattern) {
  absl::StatusOr<std::string> translated = OnigurumaToPcre2(pattern);
  EXPECT_TRUE(translated.ok()) << translated.status();
  return translated.value_or("");
}

TEST(RegexSyntaxTest, PatternsWithoutRewrittenClassesAreUnchanged) {
  for (const char* pattern : {"'s|'t|'re| ?[a-z]+|[^\\r\\n]+", "(?i:'s)|\\p{Han}+|\\x{41}",
                              "[[:alpha:]]+|\\n|\\.|\\\\s", "\\p{Zs}|[\\p{Zs}x]"}) {
    EXPECT_EQ(Translated(pattern), pattern);
  }
}

TEST(RegexSyntaxTest, WhitespaceIsListed) {
  EXPECT_EQ(Translated("\\s+"), absl::StrCat("[", kWhiteSpace, "]+"));
  // In a class, properties come first.
  EXPECT_EQ(Translated("[^\\s\\p{Zs}]"), absl::StrCat("[^\\p{Zs}", kWhiteSpace, "]"));
  EXPECT_THAT(Translated("\\S"), StartsWith(R"([\x{0}-\x{8}\x{E}-\x{1F}\x{21}-\x{84})"));
}

TEST(RegexSyntaxTest, CategoriesGainUnicode16Characters) {
  // The additions are looked for only in characters that can be among them:
  // those PCRE2 has as unassigned (Cn), and U+1171E, which moved from Mn to
  // Mc.
  EXPECT_THAT(Translated("\\p{L}"),
              StartsWith(R"((?:[\p{L}]|(?=[\p{Cn}\x{1171E}])[\x{1C89}-\x{1C8A})"));
  EXPECT_THAT(Translated("\\P{N}"),
              StartsWith(R"((?:[^\p{N}\p{Cn}\x{1171E}]|)"
                         R"((?=[\p{Cn}\x{1171E}])[^\p{N}\x{10D40}-\x{10D49})"));
  EXPECT_EQ(Translated("\\p{Letter}"), Translated("\\p{L}"));
  EXPECT_EQ(Translated("\\p{^L}"), Translated("\\P{L}"));
  // A category that only lost characters, and one that both gained and lost.
  EXPECT_THAT(Translated("\\p{Cn}"), StartsWith(R"((?:[^\P{Cn}\p{Cn}\x{1171E}]|)"));
  EXPECT_THAT(Translated("\\p{Mn}"), StartsWith(R"((?:(?![\x{1171E}])\p{Mn}|[)"));
}

TEST(RegexSyntaxTest, AComplementInAClassMakesItAnAlternation) {
  const std::string not_letter = Translated("\\P{L}");
  EXPECT_EQ(Translated("[x\\P{L}]"), absl::StrCat("(?:[x]|", not_letter, ")"));
  EXPECT_EQ(Translated("[^x\\P{L}]"), absl::StrCat("(?:(?![x]|", not_letter, ")(?s:.))"));
}

TEST(RegexSyntaxTest, OtherOnigurumaEscapes) {
  EXPECT_EQ(
      Translated("\\h\\H"),
      R"([\x{30}-\x{39}\x{41}-\x{46}\x{61}-\x{66}][\x{0}-\x{2F}\x{3A}-\x{40}\x{47}-\x{60}\x{67}-\x{10FFFF}])");
  EXPECT_EQ(Translated("\\v"), "\\x{B}");
  EXPECT_EQ(Translated("\\u00e9|[\\u0041-\\u005A]"), "\\x{00e9}|[\\x{0041}-\\x{005A}]");
  EXPECT_EQ(Translated("\\d"), Translated("\\p{Nd}"));
}

TEST(RegexSyntaxTest, NestedClassesAreUnionsAndSetOperationsAreUnsupported) {
  EXPECT_EQ(Translated("[a[bc]d]"), "[abcd]");
  EXPECT_EQ(Translated("[]a]"), "[\\]a]");
  EXPECT_EQ(Translated("[a"), "[a");  // left for PCRE2 to reject
  for (const char* pattern : {"[a-z&&[^aeiou]]", "[a[^b]]"}) {
    absl::StatusOr<std::string> translated = OnigurumaToPcre2(pattern);
    EXPECT_EQ(translated.status().code(), absl::StatusCode::kUnimplemented) << pattern;
    EXPECT_THAT(translated.status().message(), HasSubstr("set operations"));
  }
}

}  // namespace
}  // namespace entroserve::tokenizer
