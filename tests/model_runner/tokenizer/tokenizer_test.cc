// Unit tests of model_runner/tokenizer/tokenizer.h on tiny hand-written tokenizer.json
// files (written to a temporary folder where a test needs a file).
#include "model_runner/tokenizer/tokenizer.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace entroserve {
namespace {

using Json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// GPT-2's bytes_to_unicode, written out independently of tokenizer.cc.
std::string ByteChar(int b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int c = 0; c < b; ++c) {
      if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) ++n;
    }
    cp = 256 + n;
  }
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// A byte-level BPE tokenizer.json: ids 0..255 are the 256 byte characters
// (id = byte value), then `extra` tokens from 256 on, then `merges`.
// `pre_tokenizer` defaults to GPT-2's ByteLevel.
Json ByteLevelTokenizer(const std::vector<std::string>& extra, const Json& merges,
                        Json pre_tokenizer = Json{{"type", "ByteLevel"},
                                                  {"add_prefix_space", false},
                                                  {"use_regex", true}}) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + static_cast<int>(i);
  return Json{
      {"version", "1.0"},
      {"added_tokens", Json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", false}}}};
}

Tokenizer Load(const Json& json) {
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromJson(json.dump(), "test.json");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

std::vector<int32_t> Bytes(std::string_view text) {
  std::vector<int32_t> ids;
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/tokenizer_test_XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() {
    for (const std::string& file : files_) std::remove(file.c_str());
    rmdir(path_.c_str());
  }
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << contents;
    files_.push_back(file);
    return file;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// --- BPE merges -------------------------------------------------------------

TEST(TokenizerTest, MergesAreAppliedLowestRankFirst) {
  // "abc": with "b c" ranked before "a b" the result is a|bc, else ab|c.
  Tokenizer bc_first = Load(ByteLevelTokenizer({"bc", "ab"}, {"b c", "a b"}));
  EXPECT_THAT(bc_first.Encode("abc"), ElementsAre('a', 256));
  Tokenizer ab_first = Load(ByteLevelTokenizer({"bc", "ab"}, {"a b", "b c"}));
  EXPECT_THAT(ab_first.Encode("abc"), ElementsAre(257, 'c'));
}

TEST(TokenizerTest, MergesChainIntoLongerTokens) {
  Tokenizer tokenizer =
      Load(ByteLevelTokenizer({"he", "ll", "llo", "hello"}, {"h e", "l l", "ll o", "he llo"}));
  EXPECT_THAT(tokenizer.Encode("hello"), ElementsAre(259));
  EXPECT_THAT(tokenizer.Encode("hell"), ElementsAre(256, 257));
  EXPECT_EQ(tokenizer.Decode(tokenizer.Encode("hello hell")), "hello hell");
}

TEST(TokenizerTest, EqualRanksMergeLeftmostFirst) {
  Tokenizer tokenizer = Load(ByteLevelTokenizer({"aa"}, {"a a"}));
  EXPECT_THAT(tokenizer.Encode("aaa"), ElementsAre(256, 'a'));
  EXPECT_THAT(tokenizer.Encode("aaaa"), ElementsAre(256, 256));
}

TEST(TokenizerTest, MergesInArrayFormEqualStringForm) {
  Tokenizer strings = Load(ByteLevelTokenizer({"bc", "ab"}, {"b c", "a b"}));
  Tokenizer arrays = Load(ByteLevelTokenizer({"bc", "ab"}, Json::array({{"b", "c"}, {"a", "b"}})));
  EXPECT_EQ(strings.Encode("abcabc ab"), arrays.Encode("abcabc ab"));
  EXPECT_THAT(arrays.Encode("abc"), ElementsAre('a', 256));
}

TEST(TokenizerTest, Gpt2PreTokenizerKeepsMergesInsideWords) {
  // "o Ġ" would join "hello" to the following space, but GPT-2's regex puts
  // the space at the start of the next piece ("Ġworld").
  const std::string g = ByteChar(' ');
  Json merges = {"o " + g};
  Tokenizer split = Load(ByteLevelTokenizer({"o" + g}, merges));
  EXPECT_EQ(split.Encode("hello world"), Bytes("hello world"));
  Tokenizer unsplit = Load(ByteLevelTokenizer(
      {"o" + g}, merges,
      Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}));
  EXPECT_THAT(unsplit.Encode("hello world"),
              ElementsAre('h', 'e', 'l', 'l', 256, 'w', 'o', 'r', 'l', 'd'));
}

TEST(TokenizerTest, ByteLevelPrefixSpaceIsAddedToEachSegment) {
  Json json = ByteLevelTokenizer(
      {}, Json::array(),
      Json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}});
  Tokenizer tokenizer = Load(json);
  EXPECT_EQ(tokenizer.Encode("hi"), Bytes(" hi"));
  EXPECT_EQ(tokenizer.Encode(" hi"), Bytes(" hi"));
}

// Llama 3's pre-tokenizer pattern: digits in groups of 1-3, (?i:'s)
// contractions.
constexpr char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A Split(regex, behavior) pre-tokenizer, then ByteLevel without its regex.
Json SplitThenBytes(const std::string& regex, const std::string& behavior) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", regex}}},
             {"behavior", behavior},
             {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

TEST(TokenizerTest, SplitRegexWithUnicodeClassesAndDigitGroups) {
  Json pre = SplitThenBytes(kLlama3Pattern, "Isolated");
  // Every 2-byte merge inside "12345" would join across groups if the split
  // did not cut it into 123|45.
  Tokenizer tokenizer = Load(
      ByteLevelTokenizer({"12", "23", "34", "45", "3'"}, {"1 2", "2 3", "3 4", "4 5", "3 '"}, pre));
  EXPECT_THAT(tokenizer.Encode("12345"), ElementsAre(256, '3', 259));
  // "É'S" stays one letter run then "'S" (case-insensitive contraction).
  EXPECT_EQ(tokenizer.Decode(tokenizer.Encode("\xC3\x89'S 3'")), "\xC3\x89'S 3'");
}

TEST(TokenizerTest, IgnoreMergesMapsWholeVocabularyPiecesDirectly) {
  // "hello" is in the vocabulary but no merge path reaches it.
  Json json = ByteLevelTokenizer({"he", "hello"}, {"h e"});
  Tokenizer with_merges = Load(json);
  EXPECT_THAT(with_merges.Encode("hello"), ElementsAre(256, 'l', 'l', 'o'));
  json["model"]["ignore_merges"] = true;
  Tokenizer ignoring = Load(json);
  EXPECT_THAT(ignoring.Encode("hello"), ElementsAre(257));
  EXPECT_THAT(ignoring.Encode("hel"), ElementsAre(256, 'l'));
}

TEST(TokenizerTest, RepeatedWordsGiveTheSameIdsFromTheCacheAndAcrossThreads) {
  Tokenizer tokenizer = Load(ByteLevelTokenizer({"ab", "abab"}, {"a b", "ab ab"}));
  const std::vector<int32_t> first = tokenizer.Encode("abab abab abab");
  EXPECT_EQ(tokenizer.Encode("abab abab abab"), first);
  std::vector<std::thread> threads;
  std::vector<bool> same(4, false);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool ok = true;
      for (int i = 0; i < 200; ++i) ok = ok && tokenizer.Encode("abab abab abab") == first;
      same[t] = ok;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(same, ElementsAre(true, true, true, true));
}

// --- regex classes as Hugging Face's (Oniguruma's) -------------------------

// `text` without what `regex` matches: a Split(regex, Removed) pre-tokenizer
// then ByteLevel without its regex, on the byte vocabulary.
std::string Unmatched(const std::string& regex, std::string_view text) {
  Json pre = SplitThenBytes(regex, "Removed");
  Tokenizer tokenizer = Load(ByteLevelTokenizer({}, Json::array(), pre));
  return tokenizer.Decode(tokenizer.Encode(text));
}

// Unicode's White_Space, the 25 characters Oniguruma's \s matches.
constexpr char kWhiteSpace[] =
    "\t\n\v\f\r \u0085\u00A0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200A\u2028\u2029\u202F\u205F\u3000";

TEST(TokenizerRegexTest, WhitespaceIsUnicodeWhiteSpaceWithoutU180E) {
  EXPECT_EQ(Unmatched(R"(\s)", std::string(kWhiteSpace) + "x"), "x");
  // U+180E MONGOLIAN VOWEL SEPARATOR left White_Space in Unicode 6.3;
  // U+200B, U+2060 and U+FEFF were never in it.
  EXPECT_EQ(Unmatched(R"(\s+)", "a\u180E b\u200B c\u2060 d\uFEFF"), "a\u180Eb\u200Bc\u2060d\uFEFF");
  EXPECT_EQ(Unmatched(R"(\S+)", "a\u180E b"), " ");
  EXPECT_EQ(Unmatched(R"([^\s\p{L}\p{N}]+)", "a\u180E b"), "a b");
  EXPECT_EQ(Unmatched(R"([\S]+)", std::string(kWhiteSpace) + "\u180E"), kWhiteSpace);
}

TEST(TokenizerRegexTest, U180EBeforeAContractionSplitsAsInHuggingFace) {
  // Llama 3's pattern: Hugging Face cuts "\u180E's" into "\u180E'" and "s",
  // so the merge "'s" cannot apply (with U+180E as whitespace it would).
  Json pre = SplitThenBytes(kLlama3Pattern, "Isolated");
  Tokenizer tokenizer = Load(ByteLevelTokenizer({"'s"}, {"' s"}, pre));
  EXPECT_EQ(tokenizer.Encode("\u180E's"), Bytes("\u180E's"));
  EXPECT_THAT(tokenizer.Encode("x's"), ElementsAre('x', 256));
}

TEST(TokenizerRegexTest, CategoriesHaveTheCharactersOfUnicode16) {
  // U+10D50 GARAY CAPITAL LETTER A (Unicode 16.0), U+31350 (CJK Extension H,
  // 15.0), U+1E5F1 OL ONAL DIGIT ONE and U+1CCF0 OUTLINED DIGIT ZERO (16.0).
  EXPECT_EQ(Unmatched(R"(\p{L}+)", "a\U00010D50b\U000313501"), "1");
  EXPECT_EQ(Unmatched(R"(\p{N})", "x\U0001E5F1\U0001CCF0y"), "xy");
  EXPECT_EQ(Unmatched(R"(\d)", "x\U0001E5F1\U0001CCF0y"), "xy");
  EXPECT_EQ(Unmatched(R"(\P{L}+)", "\U00010D50 1"), "\U00010D50");
  EXPECT_EQ(Unmatched(R"([\P{L}x]+)", "\U00010D50 x1"), "\U00010D50");
  EXPECT_EQ(Unmatched(R"([^\r\n\p{L}\p{N}])", "\U00010D50-\U0001E5F1"), "\U00010D50\U0001E5F1");
  // U+1171E AHOM CONSONANT SIGN MEDIAL RA moved from Mn to Mc in 15.0.
  EXPECT_EQ(Unmatched(R"(\p{Mn})", "\U0001171E"), "\U0001171E");
  EXPECT_EQ(Unmatched(R"(\p{Mc})", "\U0001171E"), "");
}

TEST(TokenizerRegexTest, OnigurumaEscapesAndNestedClasses) {
  EXPECT_EQ(Unmatched(R"(\h+)", "0xBEEF zz"), "x zz");  // hexadecimal digits
  EXPECT_EQ(Unmatched(R"(\H+)", "0xBEEF zz"), "0BEEF");
  EXPECT_EQ(Unmatched(R"(\v)", "a\nb\vc"), "a\nbc");  // U+000B only
  EXPECT_EQ(Unmatched(R"(\u0041)", "BAB"), "BB");
  EXPECT_EQ(Unmatched(R"([a[bc]]+)", "abcd"), "d");  // a union
  EXPECT_EQ(Unmatched(R"([^x[\s]]+)", "ab x\tc"), " x\t");
  // BLOOM's pattern, which PCRE2 rejects as written; Hugging Face's pieces
  // are "Hello" "," " world" "! (" "a" "|" "b" ")" " 你好" "。" "ok".
  EXPECT_EQ(Unmatched(" ?[^(\\s|[.,!?…。，、।۔،])]+", "Hello, world! (a|b) 你好。ok"), ",! (|)。");
}

TEST(TokenizerRegexTest, SetOperationsInAClassAreUnsupported) {
  Json pre = {{"type", "Split"}, {"pattern", {{"Regex", "[a-z&&[^aeiou]]"}}}};
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromJson(ByteLevelTokenizer({}, Json::array(), pre).dump(), "t.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tokenizer.status().message(),
              HasSubstr("t.json: pre_tokenizer.pattern.Regex: regex /[a-z&&[^aeiou]]/"));
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("set operations"));
}

// --- added and special tokens ----------------------------------------------

Json WithAddedTokens(Json json) {
  json["added_tokens"] = {
      {{"id", 300}, {"content", "<|eot|>"}, {"special", true}},
      {{"id", 301}, {"content", "<|eot|>x"}, {"special", true}},
      {{"id", 302}, {"content", "<think>"}, {"special", false}},
      {{"id", 303}, {"content", "<mask>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}},
  };
  return json;
}

TEST(TokenizerTest, SpecialTokensAreMatchedBeforeBpeLongestFirst) {
  Tokenizer tokenizer = Load(WithAddedTokens(ByteLevelTokenizer({"ab"}, {"a b"})));
  EXPECT_THAT(tokenizer.Encode("ab<|eot|>ab"), ElementsAre(256, 300, 256));
  EXPECT_THAT(tokenizer.Encode("<|eot|>xy"), ElementsAre(301, 'y'));
  EXPECT_THAT(tokenizer.Encode("<|eot|<|eot|>"), ElementsAre('<', '|', 'e', 'o', 't', '|', 300));
  EXPECT_EQ(tokenizer.vocab_size(), 304);
  EXPECT_TRUE(tokenizer.IsSpecial(300));
  EXPECT_FALSE(tokenizer.IsSpecial(302));
  EXPECT_EQ(tokenizer.TokenToId("<|eot|>"), 300);
  EXPECT_EQ(tokenizer.IdToToken(302), "<think>");
  EXPECT_EQ(tokenizer.IdToToken(9999), std::nullopt);
}

TEST(TokenizerTest, WithoutParseSpecialOnlyNonSpecialAddedTokensMatch) {
  Tokenizer tokenizer = Load(WithAddedTokens(ByteLevelTokenizer({}, Json::array())));
  EXPECT_EQ(tokenizer.Encode("<|eot|>", /*parse_special=*/false), Bytes("<|eot|>"));
  EXPECT_THAT(tokenizer.Encode("<think>", /*parse_special=*/false), ElementsAre(302));
}

TEST(TokenizerTest, LstripAndRstripAbsorbSurroundingSpaces) {
  Tokenizer tokenizer = Load(WithAddedTokens(ByteLevelTokenizer({}, Json::array())));
  EXPECT_THAT(tokenizer.Encode("a  <mask>  b"), ElementsAre('a', 303, 'b'));
}

TEST(TokenizerTest, DecodeSkipsSpecialTokensOnRequest) {
  Tokenizer tokenizer = Load(WithAddedTokens(ByteLevelTokenizer({}, Json::array())));
  const std::vector<int32_t> ids = tokenizer.Encode("hi<|eot|><think>");
  EXPECT_EQ(tokenizer.Decode(ids), "hi<|eot|><think>");
  EXPECT_EQ(tokenizer.Decode(ids, /*skip_special=*/true), "hi<think>");
  // Unknown ids are skipped.
  EXPECT_EQ(tokenizer.Decode({'h', -1, 5000, 'i'}), "hi");
}

TEST(TokenizerTest, TemplateProcessingAddsBosAndConfigOverridesIt) {
  Json json = WithAddedTokens(ByteLevelTokenizer({}, Json::array()));
  json["added_tokens"].push_back({{"id", 304}, {"content", "<s>"}, {"special", true}});
  json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {304}}, {"tokens", {"<s>"}}}}}}};
  Tokenizer tokenizer = Load(json);
  EXPECT_EQ(tokenizer.bos_id(), 304);
  EXPECT_TRUE(tokenizer.add_bos());
  EXPECT_THAT(tokenizer.EncodeWithSpecialTokens("a"), ElementsAre(304, 'a'));
  EXPECT_THAT(tokenizer.Encode("a"), ElementsAre('a'));

  absl::StatusOr<TokenizerConfig> config = TokenizerConfig::FromJson(
      R"({"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "<|eot|>",
          "add_bos_token": false, "chat_template": [{"name": "tool_use", "template": "T"},
          {"name": "default", "template": "D"}]})",
      "tokenizer_config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->bos_token, "<s>");
  EXPECT_EQ(config->chat_template, "D");
  ASSERT_TRUE(tokenizer.ApplyConfig(*config).ok());
  EXPECT_EQ(tokenizer.eos_id(), 300);
  EXPECT_FALSE(tokenizer.add_bos());
  EXPECT_THAT(tokenizer.EncodeWithSpecialTokens("a"), ElementsAre('a'));
}

TEST(TokenizerTest, ConfigNamingAnUnknownTokenIsAnErrorNamingTheField) {
  Tokenizer tokenizer = Load(ByteLevelTokenizer({}, Json::array()));
  TokenizerConfig config;
  config.eos_token = "<|nope|>";
  absl::Status status = tokenizer.ApplyConfig(config, "tokenizer_config.json");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("tokenizer_config.json: eos_token"));
  EXPECT_THAT(status.message(), HasSubstr("<|nope|>"));
}

// --- normalizer ---------------------------------------------------------------

TEST(TokenizerTest, NfcNormalizerComposesCombiningMarks) {
  Json json = ByteLevelTokenizer({}, Json::array());
  json["normalizer"] = {{"type", "NFC"}};
  Tokenizer tokenizer = Load(json);
  // "e" + U+0301 COMBINING ACUTE ACCENT becomes U+00E9.
  EXPECT_EQ(tokenizer.Encode("e\xCC\x81"), Bytes("\xC3\xA9"));
  EXPECT_EQ(tokenizer.Encode("\xC3\xA9"), Bytes("\xC3\xA9"));
}

// --- byte fallback and Llama 2 style (non-byte-level) BPE -------------------

Json ByteFallbackTokenizer() {
  Json vocab = {{"<unk>", 0}, {"<s>", 1}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 2 + b;
  }
  const std::string space = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK
  vocab[space] = 300;
  vocab["h"] = 301;
  vocab["i"] = 302;
  vocab[space + "h"] = 303;
  vocab[space + "hi"] = 304;
  return Json{{"added_tokens", {{{"id", 1}, {"content", "<s>"}, {"special", true}}}},
              {"normalizer",
               {{"type", "Sequence"},
                {"normalizers",
                 {{{"type", "Prepend"}, {"prepend", space}},
                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}}}}},
              {"pre_tokenizer", nullptr},
              {"decoder",
               {{"type", "Sequence"},
                {"decoders",
                 {{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
                  {{"type", "ByteFallback"}},
                  {{"type", "Fuse"}},
                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
              {"model",
               {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", {space + " h", space + "h i"}},
                {"byte_fallback", true},
                {"unk_token", "<unk>"}}}};
}

TEST(TokenizerTest, ByteFallbackEncodesUnknownCharactersAsByteTokens) {
  Tokenizer tokenizer = Load(ByteFallbackTokenizer());
  // "é" (C3 A9) is not in the vocabulary: <0xC3> <0xA9>.
  const std::vector<int32_t> ids = tokenizer.Encode("hi \xC3\xA9");
  EXPECT_THAT(ids, ElementsAre(304, 300, 2 + 0xC3, 2 + 0xA9));
  EXPECT_EQ(tokenizer.Decode(ids), "hi \xC3\xA9");
  EXPECT_THAT(tokenizer.Encode("<s>hi"), ElementsAre(1, 304));
}

TEST(TokenizerTest, WithoutByteFallbackUnknownCharactersBecomeUnk) {
  Json json = ByteFallbackTokenizer();
  json["model"]["byte_fallback"] = false;
  json["model"]["fuse_unk"] = true;
  Tokenizer tokenizer = Load(json);
  EXPECT_THAT(tokenizer.Encode("hi \xC3\xA9\xC3\xA9"), ElementsAre(304, 300, 0));
}

// --- streaming decode -----------------------------------------------------------

TEST(StreamingDecoderTest, FourByteEmojiSplitAcrossTokensYieldsNoPartialCharacter) {
  Tokenizer tokenizer = Load(ByteLevelTokenizer({}, Json::array()));
  const std::string emoji = "\xF0\x9F\x98\x80";  // U+1F600
  const std::vector<int32_t> ids = tokenizer.Encode("a" + emoji + "b");
  ASSERT_EQ(ids.size(), 6u);  // one token per byte
  StreamingDecoder decoder(tokenizer);
  std::vector<std::string> deltas;
  for (int32_t id : ids) deltas.push_back(decoder.Add(id));
  EXPECT_THAT(deltas, ElementsAre("a", "", "", "", emoji, "b"));
  EXPECT_EQ(decoder.Flush(), "");
}

TEST(StreamingDecoderTest, ByteFallbackTokensAreHeldUntilTheCharacterIsComplete) {
  Tokenizer tokenizer = Load(ByteFallbackTokenizer());
  const std::vector<int32_t> ids = tokenizer.Encode("hi \xF0\x9F\x98\x80");
  StreamingDecoder decoder(tokenizer);
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string delta = decoder.Add(ids[i]);
    EXPECT_TRUE(ValidateUtf8(delta).ok());
    if (i + 1 < ids.size()) {
      EXPECT_EQ(delta.find('\xF0'), std::string::npos);
    }
    text += delta;
  }
  text += decoder.Flush();
  // The Strip decoder removed the leading space of the Prepend normalizer.
  EXPECT_EQ(text, "hi \xF0\x9F\x98\x80");
  EXPECT_EQ(text, tokenizer.Decode(ids));
}

TEST(StreamingDecoderTest, FlushReplacesAnIncompleteCharacterWithReplacementCharacter) {
  Tokenizer tokenizer = Load(ByteLevelTokenizer({}, Json::array()));
  StreamingDecoder decoder(tokenizer);
  EXPECT_EQ(decoder.Add('x'), "x");
  EXPECT_EQ(decoder.Add(0xF0), "");
  EXPECT_EQ(decoder.Add(0x9F), "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  EXPECT_EQ(decoder.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  EXPECT_EQ(tokenizer.Decode({'x', 0xF0, 0x9F}), "x\xEF\xBF\xBD");
}

TEST(StreamingDecoderTest, InvalidBytesBecomeReplacementCharactersImmediately) {
  Tokenizer tokenizer = Load(ByteLevelTokenizer({}, Json::array()));
  StreamingDecoder decoder(tokenizer);
  EXPECT_EQ(decoder.Add(0xE2), "");
  // 'a' cannot continue E2: U+FFFD for E2, then 'a'.
  EXPECT_EQ(decoder.Add('a'),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(decoder.Add(0xFF), "\xEF\xBF\xBD");
}

// --- UTF-8 -----------------------------------------------------------------------

TEST(Utf8Test, ValidateUtf8AcceptsWellFormedText) {
  EXPECT_TRUE(ValidateUtf8("").ok());
  EXPECT_TRUE(ValidateUtf8("plain ascii").ok());
  EXPECT_TRUE(ValidateUtf8("caf\xC3\xA9 \xE4\xBD\xA0 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF").ok());
}

TEST(Utf8Test, ValidateUtf8RejectsMalformedSequencesNamingTheOffset) {
  for (const char* bad :
       {"ab\xC0\xAF", "ab\xED\xA0\x80", "ab\xF4\x90\x80\x80", "ab\xE4\xBD", "ab\x80", "ab\xFF"}) {
    absl::Status status = ValidateUtf8(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("at byte 2")) << bad;
  }
}

TEST(Utf8Test, EncodeAcceptsInvalidUtf8ByteForByte) {
  Json json = ByteLevelTokenizer({}, Json::array());
  json["normalizer"] = {{"type", "NFC"}};
  Tokenizer tokenizer = Load(json);
  const std::string bad = "a\xFF\xC3 b\xE4\xBD";
  const std::vector<int32_t> ids = tokenizer.Encode(bad);
  std::string bytes;
  for (int32_t id : ids) tokenizer.AppendTokenBytes(id, false, &bytes);
  EXPECT_EQ(bytes, bad);
  EXPECT_EQ(tokenizer.Decode(ids), "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8(bad), tokenizer.Decode(ids));
}

// --- errors ------------------------------------------------------------------------

TEST(TokenizerErrorsTest, MissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("/nonexistent/tokenizer.json"));
}

TEST(TokenizerErrorsTest, ErrorsNameTheFileAndTheField) {
  TempDir dir;
  Json json = ByteLevelTokenizer({}, Json::array());
  json["model"].erase("type");
  const std::string path = dir.Write("tokenizer.json", json.dump());
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromFile(path);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path + ": model.type: missing"));
}

TEST(TokenizerErrorsTest, UnigramModelIsUnsupported) {
  Json json = ByteLevelTokenizer({}, Json::array());
  json["model"]["type"] = "Unigram";
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromJson(json.dump(), "t.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("unsupported model type \"Unigram\""));
}

TEST(TokenizerErrorsTest, BadRegexIsAnErrorQuotingThePattern) {
  Json pre = {{"type", "Split"}, {"pattern", {{"Regex", "(\\p{L}+"}}}, {"behavior", "Isolated"}};
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromJson(ByteLevelTokenizer({}, Json::array(), pre).dump(), "t.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("t.json: pre_tokenizer.pattern.Regex"));
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("bad regex /(\\p{L}+/"));
}

TEST(TokenizerErrorsTest, SequencesNameTheirListAndTheMemberThatIsWrong) {
  auto error = [](Json json) {
    return std::string(Tokenizer::FromJson(json.dump(), "t.json").status().message());
  };
  Json json = ByteLevelTokenizer({}, Json::array(), {{"type", "Sequence"}});
  EXPECT_THAT(error(json), HasSubstr("t.json: pre_tokenizer.pretokenizers: missing list"));
  json["pre_tokenizer"]["pretokenizers"] = {{{"type", "ByteLevel"}}, {{"type", "Nope"}}};
  EXPECT_THAT(error(json), HasSubstr("pre_tokenizer.pretokenizers[1]: unsupported pre_tokenizer"));

  json = ByteLevelTokenizer({}, Json::array());
  json["decoder"] = {{"type", "Sequence"}, {"decoders", 3}};
  EXPECT_THAT(error(json), HasSubstr("t.json: decoder.decoders: missing list"));
  json["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "ByteLevel"}}, 7}}};
  EXPECT_THAT(error(json), HasSubstr("decoder.decoders[1]: expected an object"));

  json = ByteLevelTokenizer({}, Json::array());
  json["normalizer"] = {{"type", "Sequence"}};
  EXPECT_THAT(error(json), HasSubstr("t.json: normalizer.normalizers: missing list"));
  json["post_processor"] = {{"type", "Sequence"}};
  json.erase("normalizer");
  EXPECT_THAT(error(json), HasSubstr("t.json: post_processor.processors: missing list"));
}

TEST(TokenizerErrorsTest, MergeOfUnknownTokensIsAnError) {
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromJson(ByteLevelTokenizer({}, {"a b"}).dump(), "t.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(),
              HasSubstr("model.merges[0]: merged token \"ab\" is not in model.vocab"));
}

TEST(TokenizerErrorsTest, NotJsonAndUnsupportedPartsAreErrors) {
  EXPECT_THAT(Tokenizer::FromJson("{not json", "t.json").status().message(),
              HasSubstr("t.json: not valid JSON"));
  Json json = ByteLevelTokenizer({}, Json::array());
  json["pre_tokenizer"] = {{"type", "Metaspace"}};
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromJson(json.dump(), "t.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tokenizer.status().message(),
              HasSubstr("pre_tokenizer: unsupported pre_tokenizer type \"Metaspace\""));
  json = ByteLevelTokenizer({}, Json::array());
  json["model"]["vocab"]["x"] = "seven";
  EXPECT_THAT(Tokenizer::FromJson(json.dump(), "t.json").status().message(),
              HasSubstr("model.vocab[\"x\"]"));
}

}  // namespace
}  // namespace entroserve
