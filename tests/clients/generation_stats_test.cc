// The summary of a generation (`samplerctl generate --summary`, `compare`).
#include "clients/samplerctl/generation_stats.h"

#include "gtest/gtest.h"
#include "runner/v1/runner.pb.h"

namespace entroserve {
namespace {

runner::v1::GeneratedToken Token(sampler::v1::Mode mode, float entropy, float varentropy) {
  runner::v1::GeneratedToken token;
  token.set_mode(mode);
  token.mutable_signals()->set_entropy(entropy);
  token.mutable_signals()->set_varentropy(varentropy);
  return token;
}

TEST(GenerationStatsTest, CountsModesAveragesSignalsAndRatesOverTheTotalTime) {
  GenerationStats stats;
  stats.Add(Token(sampler::v1::MODE_FLOWING, 0.5f, 1.0f));
  stats.Add(Token(sampler::v1::MODE_EXPLORE, 2.0f, 3.0f));
  stats.Add(Token(sampler::v1::MODE_FLOWING, 0.5f, 0.5f));
  stats.Add(Token(sampler::v1::MODE_CLARIFY, 3.0f, 7.5f));
  runner::v1::Usage usage;
  usage.set_total_ms(50);
  stats.Finish(usage);
  EXPECT_EQ(stats.tokens, 4);
  EXPECT_DOUBLE_EQ(stats.MeanEntropy(), 1.5);
  EXPECT_DOUBLE_EQ(stats.MeanVarentropy(), 3.0);
  EXPECT_DOUBLE_EQ(stats.TokensPerSecond(), 80.0);
  // Most frequent first; ties in the legend's order (clarify before explore).
  EXPECT_EQ(FormatModeCounts(stats), "flowing 2 (50%), clarify 1 (25%), explore 1 (25%)");
  EXPECT_EQ(FormatSummary(stats),
            "4 tokens, 80.0 tokens/s; modes: flowing 2 (50%), clarify 1 (25%), explore 1 (25%); "
            "mean entropy 1.500 bits, mean varentropy 3.000 bits^2");
}

TEST(GenerationStatsTest, NoTokensAndNoTimeGiveZerosNotNaN) {
  GenerationStats stats;
  EXPECT_EQ(FormatSummary(stats),
            "0 tokens, 0.0 tokens/s; modes: -; mean entropy 0.000 bits, mean varentropy 0.000 "
            "bits^2");
}

}  // namespace
}  // namespace entroserve
