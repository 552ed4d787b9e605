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

TEST(SequenceBreakersTest, EveryTokenContainingABreakerAndItsOwnTokensBreak) {
  const std::vector<std::string> breakers = {"\n", ":"};
  const absl::StatusOr<std::vector<int32_t>> ids = SequenceBreakerIds(breakers, Tiny());
  ASSERT_TRUE(ids.ok()) << ids.status();
  // Exactly the tokens whose text contains a breaker, plus their encodings.
  std::vector<int32_t> want;
  for (int32_t id = 0; id < Tiny().vocab_size(); ++id) {
    std::string text;
    Tiny().AppendTokenBytes(id, /*skip_special=*/true, &text);
    if (text.find('\n') != std::string::npos || text.find(':') != std::string::npos) {
      want.push_back(id);
    }
  }
  EXPECT_GE(want.size(), 2u);
  for (const std::string& b : breakers) {
    for (int32_t id : Tiny().Encode(b, false)) want.push_back(id);
  }
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  EXPECT_EQ(*ids, want);
}

TEST(SequenceBreakersTest, BadStringsNameTheirIndex) {
  const std::vector<std::string> empty = {"\n", ""};
  EXPECT_EQ(SequenceBreakerIds(empty, Tiny()).status().message(),
            "dry_sequence_breakers[1] has 0 bytes; must be 1 to 40");
  const std::vector<std::string> many(33, "a");
  EXPECT_THAT(std::string(SequenceBreakerIds(many, Tiny()).status().message()),
              HasSubstr("dry_sequence_breakers has 33 strings; at most 32"));
}

TEST(SequenceBreakersTest, IdsJoinTheSamplersDryBreakers) {
  SamplerConfig chain = ChainConfig();
  std::get<ChainConfig>(chain).dry_sequence_breaker_ids = {9, 4};
  ASSERT_TRUE(AddSequenceBreakers({4, 2}, &chain).ok());
  EXPECT_EQ(std::get<ChainConfig>(chain).dry_sequence_breaker_ids, (std::vector<int32_t>{2, 4, 9}));
  SamplerConfig dry = DryConfig();
  ASSERT_TRUE(AddSequenceBreakers({5}, &dry).ok());
  EXPECT_EQ(std::get<DryConfig>(dry).sequence_breaker_ids, std::vector<int32_t>{5});
  SamplerConfig entropix = EntropixConfig();
  ASSERT_TRUE(AddSequenceBreakers({5}, &entropix).ok());
  EXPECT_EQ(std::get<EntropixConfig>(entropix).dry_sequence_breaker_ids, std::vector<int32_t>{5});
  SamplerConfig greedy = GreedyConfig();
  EXPECT_EQ(AddSequenceBreakers({5}, &greedy).message(),
            "dry_sequence_breakers: sampler greedy has no DRY stage; use chain, entropix, alpha or "
            "dry");
}

}  // namespace
}  // namespace entroserve
