// DRY sequence breakers as strings, turned into ids with models/tiny's
// tokenizer, and added to the samplers that have DRY.
#include "services/runnerd/sequence_breakers.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;

const Tokenizer& Tiny() {
  static const Tokenizer* const kTokenizer = [] {
    absl::StatusOr<Tokenizer> t =
        Tokenizer::FromFile(std::string(ENTROSERVE_SOURCE_DIR) + "/models/tiny/tokenizer.json");
    EXPECT_TRUE(t.ok()) << t.status();
    return new Tokenizer(*std::move(t));
  }();
  return *kTokenizer;
}

std::string TextOf(int32_t id) {
  std::string text;
  Tiny().AppendTokenBytes(id, /*skip_special=*/true, &text);
  return text;
}

TEST(SequenceBreakersTest, EveryTokenContainingABreakerBreaks) {
  const std::vector<std::string> breakers = {"\n", ":"};
  const absl::StatusOr<SequenceBreakers> got = SequenceBreakersOf(breakers, Tiny());
  ASSERT_TRUE(got.ok()) << got.status();
  // Exactly the tokens whose text contains a breaker; one-byte breakers
  // cannot be spread over tokens.
  std::vector<int32_t> want;
  for (int32_t id = 0; id < Tiny().vocab_size(); ++id) {
    const std::string text = TextOf(id);
    if (text.find('\n') != std::string::npos || text.find(':') != std::string::npos) {
      want.push_back(id);
    }
  }
  EXPECT_GE(want.size(), 2u);
  EXPECT_EQ(got->ids, want);
  EXPECT_TRUE(got->sequences.empty());
}

TEST(SequenceBreakersTest, ABreakerOfSeveralTokensBecomesSequences) {
  const std::string breaker = "\nBob:";
  const absl::StatusOr<SequenceBreakers> got =
      SequenceBreakersOf(std::vector<std::string>{breaker}, Tiny());
  ASSERT_TRUE(got.ok()) << got.status();
  // Every token ending with the breaker's first k bytes (k < its length),
  // followed by the encoding of the other bytes.
  TokenSequences want;
  for (int32_t id = 0; id < Tiny().vocab_size(); ++id) {
    const std::string text = TextOf(id);
    if (text.find(breaker) != std::string::npos) continue;
    for (size_t k = 1; k < breaker.size(); ++k) {
      if (text.size() < k || text.compare(text.size() - k, k, breaker, 0, k) != 0) continue;
      std::vector<int32_t> sequence = {id};
      for (int32_t rest : Tiny().Encode(breaker.substr(k), false)) sequence.push_back(rest);
      sequence.resize(std::min(sequence.size(), kMaxTokenSequenceLength));
      want.push_back(sequence);
    }
  }
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  EXPECT_EQ(got->sequences, want);
  // The breaker's own encoding is one of them.
  const std::vector<int32_t> encoded = Tiny().Encode(breaker, false);
  ASSERT_GE(encoded.size(), 2u);
  EXPECT_NE(std::find(want.begin(), want.end(), encoded), want.end());
  // Its single tokens ("\n", ":") are not breakers on their own.
  EXPECT_TRUE(std::none_of(got->ids.begin(), got->ids.end(),
                           [](int32_t id) { return TextOf(id) == "\n" || TextOf(id) == ":"; }));
}

TEST(SequenceBreakersTest, BadStringsNameTheirIndex) {
  const std::vector<std::string> empty = {"\n", ""};
  EXPECT_EQ(SequenceBreakersOf(empty, Tiny()).status().message(),
            "dry_sequence_breakers[1] has 0 bytes; must be 1 to 40");
  const std::vector<std::string> many(33, "a");
  EXPECT_THAT(std::string(SequenceBreakersOf(many, Tiny()).status().message()),
              HasSubstr("dry_sequence_breakers has 33 strings; at most 32"));
}

TEST(SequenceBreakersTest, BreakersJoinTheSamplersDryBreakers) {
  SamplerConfig chain = ChainConfig();
  std::get<ChainConfig>(chain).dry_sequence_breaker_ids = {9, 4};
  ASSERT_TRUE(AddSequenceBreakers({{4, 2}, {{7, 1}}}, &chain).ok());
  EXPECT_EQ(std::get<ChainConfig>(chain).dry_sequence_breaker_ids, (std::vector<int32_t>{2, 4, 9}));
  EXPECT_EQ(std::get<ChainConfig>(chain).dry_sequence_breaker_sequences, (TokenSequences{{7, 1}}));
  SamplerConfig dry = DryConfig();
  ASSERT_TRUE(AddSequenceBreakers({{5}, {{6, 8}}}, &dry).ok());
  EXPECT_EQ(std::get<DryConfig>(dry).sequence_breaker_ids, std::vector<int32_t>{5});
  EXPECT_EQ(std::get<DryConfig>(dry).sequence_breaker_sequences, (TokenSequences{{6, 8}}));
  SamplerConfig entropix = EntropixConfig();
  ASSERT_TRUE(AddSequenceBreakers({{5}, {}}, &entropix).ok());
  EXPECT_EQ(std::get<EntropixConfig>(entropix).dry_sequence_breaker_ids, std::vector<int32_t>{5});
  SamplerConfig greedy = GreedyConfig();
  EXPECT_EQ(AddSequenceBreakers({{5}, {}}, &greedy).message(),
            "dry_sequence_breakers: sampler greedy has no DRY stage; use chain, entropix, alpha or "
            "dry");
}

}  // namespace
}  // namespace entroserve
