// Conformance of the C++ Tokenizer with an independent implementation
// (@lenml/tokenizers, a fork of transformers.js) on real vocabularies no one
// here wrote: Llama 3 and Qwen3, plus Llama 3's vocabulary with the GPT-2
// ByteLevel pre-tokenizer. The ctest fixture tokenizer_reference
// (tokenizer_reference.sh) writes the expected ids for tokenizer_texts.json;
// each vocabulary's test encodes every text and compares id for id, then
// checks that decoding (whole and streamed) gives the text back.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model_runner/tokenizer/chat_template.h"
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

// Encodes every reference text; returns how many matched. Every mismatch is
// reported with the text and both id lists.
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
    const Json& test_case = cases[i];
    const std::string text = test_case["text"].get<std::string>();
    const std::vector<int32_t> expected = test_case["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tokenizer->Encode(text);
    EXPECT_EQ(ids, expected) << name << " text #" << i << " " << Escaped(text) << "\n  ours "
                             << IdsString(ids) << "\n  ref  " << IdsString(expected);
    if (ids == expected) ++matched;

    const std::string decoded = tokenizer->Decode(expected);
    EXPECT_EQ(decoded, test_case["decoded"].get<std::string>())
        << name << " decode of text #" << i << " " << Escaped(text);
    if (!test_case["round_trip"].is_null()) {
      EXPECT_EQ(decoded, test_case["round_trip"].get<std::string>())
          << name << " round trip of text #" << i << " " << Escaped(text);
    }
    StreamingDecoder stream(*tokenizer);
    std::string streamed;
    for (int32_t id : expected) {
      const std::string delta = stream.Add(id);
      EXPECT_TRUE(ValidateUtf8(delta).ok()) << name << " text #" << i << " delta splits a char";
      streamed += delta;
    }
    streamed += stream.Flush();
    EXPECT_EQ(streamed, decoded) << name << " streamed decode of text #" << i;
  }
  std::cout << "[ conformance ] " << name << ": " << matched << "/" << cases.size()
            << " texts matched id for id\n";
}

TEST(TokenizerConformance, Llama3MatchesReferenceIdForId) { ExpectConformance("llama3"); }

TEST(TokenizerConformance, Qwen3MatchesReferenceIdForId) { ExpectConformance("qwen3"); }

TEST(TokenizerConformance, Gpt2ByteLevelPreTokenizerMatchesReference) {
  ExpectConformance("llama3-gpt2-pretokenizer");
}

TEST(TokenizerConformance, Gpt2ByteLevelWithPrefixSpaceMatchesReference) {
  ExpectConformance("llama3-gpt2-prefix-space");
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
