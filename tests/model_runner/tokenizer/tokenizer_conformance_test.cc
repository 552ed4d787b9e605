// Conformance of the C++ Tokenizer with Hugging Face's own tokenizers (npm
// `tokenizers`, the Rust library's Node binding) on real vocabularies no one
// here wrote: Llama 3 and Qwen3, plus Llama 3's vocabulary with the GPT-2
// ByteLevel pre-tokenizer. The ctest fixture tokenizer_reference
// (tokenizer_reference.sh) writes the expected ids for tokenizer_texts.json,
// with those of a second implementation, @lenml/tokenizers (a fork of
// transformers.js), beside them; where the two disagree (U+0085 and U+FEFF,
// which JavaScript's \s classes differently) Hugging Face's are the truth.
// Each vocabulary's test encodes every text and compares id for id, then
// checks that decoding (whole and streamed) gives the text back. The
// fixture also lists the code points Hugging Face's regex engine matches
// with each of a list of classes; RegexClassesMatchHuggingFace compares ours
// code point by code point.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "model_runner/tokenizer/chat_template.h"
#include "model_runner/tokenizer/regex.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace entroserve {
namespace {

using Json = nlohmann::json;

const Json& Reference() {
  static const Json* reference = [] {
    std::ifstream in(ENTROSERVE_TOKENIZER_REFERENCE);
    if (!in) return new Json();
    std::stringstream contents;
    contents << in.rdbuf();
    return new Json(Json::parse(contents.str(), nullptr, /*allow_exceptions=*/false));
  }();
  return *reference;
}

const Json* FindVocabulary(const std::string& name) {
  const Json& reference = Reference();
  if (!reference.is_object() || !reference.contains("vocabularies")) return nullptr;
  for (const Json& vocabulary : reference["vocabularies"]) {
    if (vocabulary["name"] == name) return &vocabulary;
  }
  return nullptr;
}

std::string Escaped(const std::string& text) { return Json(text).dump(); }

std::string IdsString(const std::vector<int32_t>& ids) { return Json(ids).dump(); }

// Decodes Hugging Face's ids of one text, whole and streamed.
void ExpectDecodes(const Tokenizer& tokenizer, const std::string& name, size_t i,
                   const Json& test_case) {
  const std::string text = test_case["text"].get<std::string>();
  const std::vector<int32_t> expected = test_case["ids"].get<std::vector<int32_t>>();
  const std::string decoded = tokenizer.Decode(expected);
  EXPECT_EQ(decoded, test_case["decoded"].get<std::string>())
      << name << " decode of text #" << i << " " << Escaped(text);
  if (!test_case["round_trip"].is_null()) {
    EXPECT_EQ(decoded, test_case["round_trip"].get<std::string>())
        << name << " round trip of text #" << i << " " << Escaped(text);
  }
  StreamingDecoder stream(tokenizer);
  std::string streamed;
  for (int32_t id : expected) {
    const std::string delta = stream.Add(id);
    EXPECT_TRUE(ValidateUtf8(delta).ok()) << name << " text #" << i << " delta splits a char";
    streamed += delta;
  }
  streamed += stream.Flush();
  EXPECT_EQ(streamed, decoded) << name << " streamed decode of text #" << i;
}

// Where @lenml/tokenizers gives other ids than Hugging Face: only on texts
// with U+0085 or U+FEFF, the two characters JavaScript's \s and
// Oniguruma's disagree on. Returns the numbers of those texts.
std::vector<size_t> ReferenceDisagreements(const std::string& name, const Json& cases) {
  std::vector<size_t> disagree;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (cases[i]["ids"] == cases[i]["lenml_ids"]) continue;
    disagree.push_back(i);
    const std::string text = cases[i]["text"].get<std::string>();
    EXPECT_TRUE(absl::StrContains(text, "\u0085") || absl::StrContains(text, "\uFEFF"))
        << name << ": the references disagree on text #" << i << " " << Escaped(text);
  }
  return disagree;
}

// Encodes every reference text and compares with Hugging Face's ids; every
// mismatch is reported with the text and both id lists.
void ExpectConformance(const std::string& name) {
  const Json* vocabulary = FindVocabulary(name);
  ASSERT_NE(vocabulary, nullptr) << "no reference for " << name << " in "
                                 << ENTROSERVE_TOKENIZER_REFERENCE
                                 << " (run the tokenizer_reference_setup ctest fixture)";
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromFile((*vocabulary)["tokenizer_json"].get<std::string>());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ASSERT_TRUE(tokenizer->LoadConfig((*vocabulary)["tokenizer_config"].get<std::string>()).ok());

  const Json& cases = (*vocabulary)["cases"];
  ASSERT_GE(cases.size(), 50u);
  int matched = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string text = cases[i]["text"].get<std::string>();
    const std::vector<int32_t> expected = cases[i]["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tokenizer->Encode(text);
    EXPECT_EQ(ids, expected) << name << " text #" << i << " " << Escaped(text) << "\n  ours "
                             << IdsString(ids) << "\n  ref  " << IdsString(expected);
    if (ids == expected) ++matched;
    ExpectDecodes(*tokenizer, name, i, cases[i]);
  }
  const std::vector<size_t> disagree = ReferenceDisagreements(name, cases);
  std::cout << "[ conformance ] " << name << ": " << matched << "/" << cases.size()
            << " texts matched Hugging Face id for id; @lenml/tokenizers differs from it on "
            << disagree.size() << " (texts " << Json(disagree).dump() << ")\n";
}

TEST(TokenizerConformance, Llama3MatchesReferenceIdForId) { ExpectConformance("llama3"); }

TEST(TokenizerConformance, Qwen3MatchesReferenceIdForId) { ExpectConformance("qwen3"); }

TEST(TokenizerConformance, Gpt2ByteLevelPreTokenizerMatchesReference) {
  ExpectConformance("llama3-gpt2-pretokenizer");
}

TEST(TokenizerConformance, Gpt2ByteLevelWithPrefixSpaceMatchesReference) {
  ExpectConformance("llama3-gpt2-prefix-space");
}

// Every code point but the surrogates, in order, in UTF-8.
std::string AllCodepoints() {
  std::string text;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp < 0xD800 || cp > 0xDFFF) AppendUtf8(cp, &text);
  }
  return text;
}

// Which code points `regex` matches in AllCodepoints(), one match each.
std::vector<bool> Matched(const tokenizer::Regex& regex, const std::string& all) {
  std::vector<bool> matched(0x110000, false);
  std::vector<std::pair<size_t, size_t>> matches;
  regex.FindAll(all, &matches);
  for (auto [begin, end] : matches) {
    size_t pos = begin;
    matched[DecodeUtf8(all, &pos)] = true;
  }
  return matched;
}

// The first code points on which `ours` and the reference's [first, last]
// ranges disagree, "" when none.
std::string Differences(const std::vector<bool>& ours, const Json& ranges) {
  std::vector<bool> theirs(ours.size(), false);
  for (const Json& range : ranges) {
    for (uint32_t cp = range[0].get<uint32_t>(); cp <= range[1].get<uint32_t>(); ++cp) {
      theirs[cp] = true;
    }
  }
  std::string differences;
  int shown = 0;
  for (uint32_t cp = 0; cp < ours.size() && shown < 12; ++cp) {
    if (ours[cp] == theirs[cp]) continue;
    absl::StrAppendFormat(&differences, " U+%04X (%s)", cp, ours[cp] ? "ours only" : "theirs only");
    ++shown;
  }
  return differences;
}

TEST(TokenizerConformance, RegexClassesMatchHuggingFace) {
  const Json& reference = Reference();
  ASSERT_TRUE(reference.is_object() && reference.contains("regex_classes"))
      << "no regex_classes in " << ENTROSERVE_TOKENIZER_REFERENCE;
  const std::string all = AllCodepoints();
  for (const Json& entry : reference["regex_classes"]) {
    const std::string pattern = entry["pattern"].get<std::string>();
    absl::StatusOr<tokenizer::Regex> regex = tokenizer::Regex::Compile(pattern, "class");
    ASSERT_TRUE(regex.ok()) << regex.status();
    EXPECT_EQ(Differences(Matched(*regex, all), entry["ranges"]), "")
        << "/" << pattern << "/ matches other code points than Hugging Face's";
  }
  std::cout << "[ conformance ] " << reference["regex_classes"].size()
            << " regex classes compared with Hugging Face's, code point by code point\n";
}

// The real tokenizer_config.json files: BOS/EOS resolved, and the shipped chat
// templates detected as their families.
TEST(TokenizerConformance, RealConfigsGiveSpecialIdsAndTemplates) {
  const Json* llama = FindVocabulary("llama3");
  const Json* qwen = FindVocabulary("qwen3");
  ASSERT_NE(llama, nullptr);
  ASSERT_NE(qwen, nullptr);

  absl::StatusOr<Tokenizer> llama_tokenizer =
      Tokenizer::FromFile((*llama)["tokenizer_json"].get<std::string>());
  ASSERT_TRUE(llama_tokenizer.ok()) << llama_tokenizer.status();
  ASSERT_TRUE(llama_tokenizer->LoadConfig((*llama)["tokenizer_config"].get<std::string>()).ok());
  EXPECT_EQ(llama_tokenizer->vocab_size(), 128256);
  EXPECT_EQ(llama_tokenizer->bos_id(), 128000);
  EXPECT_EQ(llama_tokenizer->eos_id(), 128001);
  EXPECT_EQ(llama_tokenizer->TokenToId("<|eot_id|>"), 128009);
  EXPECT_TRUE(llama_tokenizer->IsSpecial(128009));
  absl::StatusOr<ChatTemplate> llama_template = ChatTemplate::FromConfig(llama_tokenizer->config());
  ASSERT_TRUE(llama_template.ok()) << llama_template.status();
  EXPECT_EQ(llama_template->family(), ChatTemplateFamily::kLlama3);
  absl::StatusOr<std::string> llama_prompt =
      llama_template->Apply({{"user", "Hi"}}, /*add_generation_prompt=*/true);
  ASSERT_TRUE(llama_prompt.ok());
  EXPECT_EQ(llama_tokenizer->Encode(*llama_prompt),
            (std::vector<int32_t>{128000, 128006, 882, 128007, 271, 13347, 128009, 128006, 78191,
                                  128007, 271}));

  absl::StatusOr<Tokenizer> qwen_tokenizer =
      Tokenizer::FromFile((*qwen)["tokenizer_json"].get<std::string>());
  ASSERT_TRUE(qwen_tokenizer.ok()) << qwen_tokenizer.status();
  ASSERT_TRUE(qwen_tokenizer->LoadConfig((*qwen)["tokenizer_config"].get<std::string>()).ok());
  EXPECT_EQ(qwen_tokenizer->bos_id(), std::nullopt);
  EXPECT_EQ(qwen_tokenizer->eos_id(), 151645);  // <|im_end|>
  EXPECT_FALSE(qwen_tokenizer->add_bos());
  absl::StatusOr<ChatTemplate> qwen_template = ChatTemplate::FromConfig(qwen_tokenizer->config());
  ASSERT_TRUE(qwen_template.ok()) << qwen_template.status();
  EXPECT_EQ(qwen_template->family(), ChatTemplateFamily::kChatMl);
  EXPECT_EQ(qwen_template->options().default_system_message, "");  // Qwen3 has none
}

}  // namespace
}  // namespace entroserve
